"""Dispatch: 500 trivial jobs (``true``) through the daemon, against bare ``subprocess.Popen``.

    python bench/dispatch.py [--jobs 500] [--mem]   (--mem: every job gets a cgroup with a memory limit)

Baseline, same process, same machine: ``Popen(["true"])`` then ``wait()``, one after the
other; submit→start is the ``Popen`` call. tuxai: the SDK submits every job as fast as it
can over the Unix socket to a daemon scheduling a simulated 16-CPU box (so CPUs are not
what limits it); submit→start runs from before ``submit()`` to the moment the shim's
``Popen`` of the job returned (``started_at``). jobs/s: all jobs from the first submit to
the last end. Targets on a 2-core machine: p50 < 30 ms, ≥ 100 jobs/s.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.daemon_helpers import DaemonProcess, finish  # noqa: E402

INVENTORY = REPO / "examples" / "inventories" / "laptop-cpu-only.yaml"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def bare_popen(count: int) -> tuple[list[float], float]:
    """Latencies (s) of ``Popen(["true"])`` and the jobs/s of start+wait one after the other."""
    latencies = []
    began = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        process = subprocess.Popen(["true"])
        latencies.append(time.perf_counter() - t0)
        process.wait()
    return latencies, count / (time.perf_counter() - began)


def through_daemon(count: int, memory_limit: bool) -> tuple[list[float], float, dict[str, object]]:
    """Latencies (s) submit→start and jobs/s through a real daemon."""
    spec: dict[str, object] = {"command": ["true"], **({"mem": "1GiB"} if memory_limit else {})}
    with tempfile.TemporaryDirectory() as tmp:
        daemon = DaemonProcess(Path(tmp) / "home", INVENTORY).start()
        try:
            client = daemon.client
            client.submit({"command": ["true"]})  # warm the launcher and the connection
            time.sleep(0.5)
            submitted: dict[int, float] = {}
            began = time.time()
            for _ in range(count):
                t0 = time.time()
                submitted[client.submit(spec, environment={"PATH": "/usr/bin:/bin"})] = t0
            jobs = daemon.wait_all(list(submitted), timeout_s=600)
            ended = max(j.ended_at or 0.0 for j in jobs.values())
            latencies = [(jobs[i].started_at or 0.0) - t0 for i, t0 in submitted.items()]
            states = {j.state.value for j in jobs.values()}
            return latencies, count / (ended - began), {"states": sorted(states), "ticks": client.health().ticks}
        finally:
            with contextlib.suppress(Exception):
                finish(daemon)


def main() -> int:
    """Run both, print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--mem", action="store_true", help="each job asks --mem 1GiB (a cgroup per job)")
    args = parser.parse_args()
    base, base_rate = bare_popen(args.jobs)
    ours, rate, info = through_daemon(args.jobs, memory_limit=args.mem)
    what = "with --mem 1GiB (a cgroup each)" if args.mem else "without limits (no cgroup)"
    print(f"dispatch of {args.jobs} jobs `true` {what}, {info}")
    print(f"{'':14} {'p50 ms':>8} {'p99 ms':>8} {'jobs/s':>8}")
    for name, values, jobs_s in (("bare Popen", base, base_rate), ("tuxai", ours, rate)):
        p50, p99 = percentile(values, 50) * 1e3, percentile(values, 99) * 1e3
        print(f"{name:14} {p50:8.2f} {p99:8.2f} {jobs_s:8.1f}")
    p50_ratio = statistics.median(ours) / statistics.median(base)
    print(f"ratio tuxai / bare Popen: p50 latency × {p50_ratio:.1f}, throughput × {rate / base_rate:.2f}")
    ok = percentile(ours, 50) < 0.030 and rate >= 100
    print("targets (p50 < 30 ms, ≥ 100 jobs/s):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
