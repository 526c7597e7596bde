"""Scale-out baseline: Ray's own job API on a warm local Ray cluster, submit → running.

    python bench/scale.py [--jobs 20]

The cluster is tests/ray/cluster.py's (a head on 127.0.0.2 with Ray's dashboard and job API,
two workers of 2 simulated GPUs, one CPU per node). Ray's side: ``JobSubmissionClient
.submit_job(entrypoint="true", entrypoint_num_cpus=1)``, one job after the other; submit →
running runs from before ``submit_job`` to the first status poll (every 10 ms) that is no longer
PENDING (RUNNING, or already SUCCEEDED); the ``submit_job`` call alone is printed too (Ray
starts a job supervisor actor, a fresh worker process, for every job: most of the wait). The
cluster is warmed by one job first, not counted.
issue 15 measured 0.6 s per job before. tuxai's side, on the same cluster in the same run: a daemon
started with ``tuxai up --ray`` (its own process), one-GPU jobs (``true``) submitted through the SDK one
after the other; from before ``Client.submit`` to the first poll (every 10 ms) that sees the job ended
(tuxai marks a job running before Ray placed it: its end is the honest mark, and counts more than Ray's).
Needs ``ray[default]`` (the dashboard): ``make bench`` installs it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ray.cluster import LocalRayCluster  # noqa: E402

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def _ray_submit_to_running(url: str, jobs: int) -> tuple[list[float], list[float]]:
    """Each job's (submit_job's own call, submit → running), in seconds."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(url)
    delays, calls = [], []
    for number in range(jobs + 1):
        began = time.monotonic()
        job_id = client.submit_job(entrypoint="true", entrypoint_num_cpus=1)
        call = time.monotonic() - began
        while client.get_job_status(job_id) == JobStatus.PENDING:
            time.sleep(0.01)
        delay = time.monotonic() - began
        while str(client.get_job_status(job_id).value) not in TERMINAL:
            time.sleep(0.05)
        if number:  # the first one warms the job supervisor up
            delays.append(delay)
            calls.append(call)
    return calls, delays


def _tuxai_submit_to_running(cluster: LocalRayCluster, home: Path, jobs: int) -> list[float]:
    """Each one-GPU job's submit → running through a ``tuxai up --ray`` daemon, in seconds (the first not counted)."""
    from tests.daemon_helpers import DaemonProcess, finish

    process = DaemonProcess(home, cluster.nodes[0].inventory, ("--ray", cluster.address)).start(timeout_s=120)
    delays = []
    try:
        for number in range(jobs + 1):
            began = time.monotonic()
            job_id = process.client.submit({"command": ["true"], "gpus": 1}, {"PATH": "/usr/bin:/bin"})
            # tuxai records a job running before its placement group and actor exist: the job's end
            # (its ``true`` ran on the node) is the honest mark, an upper bound of submit → running.
            while not process.client.job(job_id).state.terminal:
                time.sleep(0.01)
            delay = time.monotonic() - began
            if number:
                delays.append(delay)
    finally:
        finish(process)
    return delays


def _line(what: str, delays: list[float], mark: str = "submit→running") -> str:
    ordered = sorted(delays)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"{what}, {len(delays)} jobs one after the other: "
        f"{mark} p50 {statistics.median(delays) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms"
    )


def main() -> int:
    """Start the cluster, time Ray's job API, print the numbers, stop the cluster."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tuxai-scale-") as tmp:
        cluster = LocalRayCluster(Path(tmp), dashboard=True)
        began = time.monotonic()
        try:
            cluster.start()
            print(f"Ray cluster up in {time.monotonic() - began:.1f} s (head + 2 workers, loopback addresses)")
            calls, delays = _ray_submit_to_running(cluster.dashboard_url, args.jobs)
            ours = _tuxai_submit_to_running(cluster, Path(tmp) / "home", args.jobs)
        finally:
            cluster.stop()
        left = cluster.processes()
    print(
        _line("Ray JobSubmissionClient.submit_job (one CPU)", delays),
        f"(the call itself: p50 {statistics.median(calls) * 1000:.0f} ms)",
    )
    print(_line("tuxai submit to tuxai up --ray (one GPU)", ours, "submit→ended"))
    print(f"ratio of p50s (Ray's / tuxai's): {statistics.median(delays) / statistics.median(ours):.2f}")
    if left:
        print(f"processes of the cluster left running: {left}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
