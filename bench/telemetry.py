"""Telemetry overhead: the daemon's sampler at 1 s on a simulated 8-GPU box with 8 jobs running.

    python bench/telemetry.py [--seconds 30]

The daemon's telemetry thread measures its own CPU time (``time.thread_time``) per step:
GPU samples, per-job usage from /proc, energy attribution, detection, the SQLite writes,
and the rollups. Target: under 1 % of one core. Baseline in this process: the bare
minimum any per-job sampler does each second — one walk of /proc reading every
process's stat — so the ratio says what tuxai adds on top.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.daemon_helpers import DaemonProcess, finish  # noqa: E402

DGX = REPO / "examples" / "inventories" / "dgx-a100.yaml"


def bare_proc_walk(seconds: int) -> float:
    """CPU seconds per walk of /proc (stat of every process), averaged over ``seconds`` walks."""
    started = time.thread_time()
    for _ in range(seconds):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"{entry.path}/stat") as handle:
                        handle.read()
                except OSError:
                    pass
    return (time.thread_time() - started) / seconds


def main() -> int:
    """Run, print the per-step cost, the share of one core and the ratio to the bare walk."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = DaemonProcess(Path(tmp) / "home", DGX, ("--telemetry-period", "1")).start()
        try:
            ids = [daemon.client.submit({"command": ["sleep", "600"], "gpus": 1, "grace": "1s"}) for _ in range(7)]
            time.sleep(3)
            before = daemon.client.health()
            time.sleep(args.seconds)
            after = daemon.client.health()
            for job_id in ids:
                daemon.client.cancel(job_id)
        finally:
            finish(daemon)
    steps = after.telemetry_steps - before.telemetry_steps
    cpu = after.telemetry_cpu_s - before.telemetry_cpu_s
    per_step = cpu / max(1, steps)
    share = cpu / args.seconds
    baseline = bare_proc_walk(args.seconds)
    print(f"telemetry at 1 s on a simulated 8-GPU box, 7 jobs running, {steps} steps in {args.seconds} s")
    print(f"  tuxai sampler: {per_step * 1e3:.2f} ms CPU per step = {share:.3%} of one core")
    print(f"  bare /proc walk: {baseline * 1e3:.2f} ms CPU; ratio tuxai / bare {per_step / baseline:.1f}")
    print("target (< 1 % of one core):", "met" if share < 0.01 else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
