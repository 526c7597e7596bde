"""The openb replays: time against the 60 s target, results against the FGD artifact's.

Packing mode, seed 42, every policy on the whole trace (1,213 nodes, 6,212
GPUs, ~10,850 pods); time mode, seed 42, 5,000 jobs on 64 sampled nodes at
load 0.95. The baseline for packing is the artifact's own mean over seeds
42-51 (best-fit 92.9 %, FGD 95.2 %, random 86.3 %); for time mode, backfill.
Run from the repository root with the shared traces beside it.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

from tuxai.sim.openb import parse_nodes, parse_pods
from tuxai.sim.packing import replay_packing
from tuxai.sim.timemode import draw_workload, replay_time

TRACES = Path(__file__).resolve().parent.parent.parent / "shared" / "traces"
ARTIFACT = {"random": 0.863, "best-fit": 0.929, "fgd": 0.952}


def main() -> None:
    """Print one line per replay."""
    openb = TRACES / "alibaba-gpu-v2023-openb"
    nodes = parse_nodes((openb / "openb_node_list_gpu_node.csv").read_text())
    pods = parse_pods((openb / "openb_pod_list_default.csv").read_text())
    for policy in ("random", "best-fit", "fgd", "tuxai"):
        started = time.perf_counter()
        result = replay_packing(nodes, pods, policy, 42)
        seconds = time.perf_counter() - started
        reference = ARTIFACT.get(policy, ARTIFACT["fgd"])
        print(
            f"packing {policy:9} seed 42: {result.allocated_gpu_share * 100:.2f} % at 100 % arrived "
            f"(artifact {'FGD ' if policy == 'tuxai' else ''}{reference * 100:.1f} %, "
            f"ratio {result.allocated_gpu_share / reference:.4f}); {seconds:.1f} s, target < 60 s: "
            f"{'OK' if seconds < 60 else 'MISSED'}"
        )
    runtimes = [float(row["runtime"]) for row in csv.DictReader((TRACES / "philly" / "philly_runtime.csv").open())]
    cluster, jobs = draw_workload(nodes, pods, runtimes, 5000, 64, 0.95, 42)
    baseline = None
    for policy in ("backfill", "fifo", "sjf", "tuxai"):
        started = time.perf_counter()
        result = replay_time(cluster, jobs, policy, 42)
        seconds = time.perf_counter() - started
        baseline = baseline or result.avg_jct_s
        print(
            f"time    {policy:9} seed 42: mean JCT {result.avg_jct_s / 3600:.2f} h (ratio to backfill "
            f"{result.avg_jct_s / baseline:.2f}), "
            f"p95 wait 4 GPUs {result.p95_wait_by_gpus_s.get('4', 0) / 3600:.1f} h, "
            f"8 GPUs {result.p95_wait_by_gpus_s.get('8', 0) / 3600:.1f} h; {seconds:.1f} s, target < 60 s: "
            f"{'OK' if seconds < 60 else 'MISSED'}"
        )


if __name__ == "__main__":
    sys.exit(main())
