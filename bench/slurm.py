"""Slurm backend overhead: submit → running through tuxai (``tuxai up --slurm``) against bare ``sbatch``
of the same script on the same cluster (issue 16's bench; target: tuxai adds < 20 % of sbatch's own time).

    python bench/slurm.py [--jobs 50]          (as root, with slurm-wlm and munge: make test-slurm installs them)

The cluster is tests/slurm/cluster.py's (munge, slurmctld, slurmd n1 and n2 with 2 fake GPUs each,
on this one machine). Each side submits one-GPU jobs one after the other; a job's first act writes
the time (``date +%s.%N``) to a file, and submit → running runs from before the submit (``sbatch``
run as a process; ``Client.submit`` over the daemon's socket) to that time. The next job is
submitted once the last one wrote its time. Both sides are warmed by one job first, not counted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.slurm.cluster import Cluster, start  # noqa: E402

from tuxai.api.client import Client  # noqa: E402


def _stamp(path: Path) -> str:
    return f"date +%s.%N > {path}.tmp && mv {path}.tmp {path}"


def _waited(path: Path, timeout_s: float = 60.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return float(path.read_text())
        time.sleep(0.005)
    raise RuntimeError(f"no job wrote {path} within {timeout_s} s")


def bare_sbatch(cluster: Cluster, work: Path, jobs: int) -> list[float]:
    """Each bare ``sbatch --gres=gpu:1 --wrap …``'s submit → running, in seconds."""
    delays = []
    for index in range(jobs + 1):
        mark = work / f"sbatch-{index}"
        began = time.time()
        cluster.run("sbatch", "--parsable", "--gres=gpu:1", "--output=/dev/null", "--wrap", _stamp(mark))
        delays.append(_waited(mark) - began)
    return delays[1:]


def through_tuxai(cluster: Cluster, work: Path, jobs: int) -> list[float]:
    """Each ``Client.submit`` to a ``tuxai up --slurm`` daemon: submit → running, in seconds."""
    home = work / "home"
    home.mkdir()
    argv = [sys.executable, "-m", "tuxai.api.server", "--home", str(home), "--slurm", "--cgroups", "off"]
    argv += ["--metrics-addr", "127.0.0.1:0"]
    with open(work / "daemon.log", "ab") as log:
        daemon = subprocess.Popen(argv, env=cluster.env, stdout=log, stderr=log, start_new_session=True)
    try:
        client = Client.for_home(home, timeout_s=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.health()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        delays = []
        for index in range(jobs + 1):
            mark = work / f"tuxai-{index}"
            began = time.time()
            client.submit({"command": ["sh", "-c", _stamp(mark)], "gpus": 1}, {"PATH": "/usr/bin:/bin"})
            delays.append(_waited(mark) - began)
        client.shutdown()
        daemon.wait(timeout=15)
        return delays[1:]
    finally:
        if daemon.poll() is None:
            daemon.kill()


def main() -> int:
    """Run both sides on one cluster and print p50, p90 and tuxai's overhead."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    options = parser.parse_args()
    cluster = start()
    try:
        with tempfile.TemporaryDirectory(prefix="tuxai-bench-slurm-") as scratch:
            work = Path(scratch)
            work.chmod(0o755)
            bare = bare_sbatch(cluster, work, options.jobs)
            ours = through_tuxai(cluster, work, options.jobs)
    finally:
        cluster.stop()
    for name, delays in (("sbatch", bare), ("tuxai", ours)):
        q = statistics.quantiles(delays, n=10)
        print(
            f"{name:>6}: submit → running p50 {statistics.median(delays):.3f} s, p90 {q[8]:.3f} s ({len(delays)} jobs)"
        )
    overhead = statistics.median(ours) / statistics.median(bare) - 1
    print(f"tuxai adds {overhead * 100:.0f} % to sbatch's p50 (target < 20 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
