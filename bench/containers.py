"""Container start overhead: submit → the job's first line of output, a container job against
the same job bare and against bare ``podman run`` of the same image (issue 19's bench).

    python bench/containers.py IMAGE [--runs 5]     (as root; IMAGE e.g. from `tuxai image build`)

The three ways run interleaved, one of each per round: on a shared machine the load drifts
by seconds, and three blocks one after the other once differed by more than the target.

Baseline, same process, same machine: ``podman run`` with the runtime and limits tuxai gives
it, from the call to its first line on stdout. tuxai: from before ``submit()`` to the first
line in the job's log (polled every 2 ms), for ``image:`` and for the same job bare.
Target: the container job within 0.2 s of bare podman.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.daemon_helpers import DaemonProcess, finish  # noqa: E402

from tuxai.daemon.containers import host_runtime  # noqa: E402

COMMAND = ["sh", "-c", "echo first; sleep 0.2"]


def bare_podman(image: str) -> float:
    """Seconds from ``podman run`` to its first line."""
    argv = ["podman", f"--runtime={host_runtime()}", "run", "--rm", "--network=host", "--log-driver=none",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", image, *COMMAND]  # fmt: skip
    began = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        process.stdout.readline()
        elapsed = time.perf_counter() - began
        process.wait()
    return elapsed


STARTS: dict[str | None, list[float]] = {}
"""Per way (image or None): seconds from ``submit()`` to the shim's start of the command (podman, for an image)."""


def through_tuxai(daemon: DaemonProcess, image: str | None) -> float:
    """Seconds from ``submit()`` to the job's first line in its log (and, in STARTS, to the command's start)."""
    fields: dict[str, object] = {"command": COMMAND, **({"image": image} if image else {})}
    began, wall = time.perf_counter(), time.time()
    job_id = daemon.client.submit(fields)
    log = daemon.home / "jobs" / str(job_id) / "output.log"
    while not (log.exists() and log.read_text()):
        time.sleep(0.002)
    elapsed = time.perf_counter() - began
    daemon.wait_all([job_id], timeout_s=60)
    status = json.loads((log.parent / "run-1" / "status.json").read_text())
    STARTS.setdefault(image, []).append(status["started_at"] - wall)
    return elapsed


def main() -> int:
    """Run each way ``--runs`` times; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = DaemonProcess(Path(tmp) / "home").start()
        try:
            rows: dict[str, list[float]] = {"bare podman run": [], "tuxai, image:": [], "tuxai, bare job": []}
            for _ in range(args.runs):  # interleaved: the machine's load drifts over all three alike
                rows["bare podman run"].append(bare_podman(args.image))
                rows["tuxai, image:"].append(through_tuxai(daemon, args.image))
                rows["tuxai, bare job"].append(through_tuxai(daemon, None))
        finally:
            finish(daemon)
    for name, values in rows.items():
        print(f"{name:18} median {statistics.median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f})")
    for image, starts in STARTS.items():
        way = "image:" if image else "bare job"
        print(f"  tuxai, {way:9} submit -> command started: median {statistics.median(starts):.3f} s")
    gap = statistics.median(rows["tuxai, image:"]) - statistics.median(rows["bare podman run"])
    print(f"container job over bare podman: {gap:+.3f} s (target ≤ 0.2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
