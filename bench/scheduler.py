"""Speed of one ``decide``: 10,000 pending jobs on a 1,024-GPU inventory, target under 100 ms.

A full cluster (as after a day of work) and a mixed queue; three more sizes to
show how ``decide`` scales with jobs × GPUs. The baseline, in the same process,
is the least any scheduler does: sorting the same queue by submission time.
"""

from __future__ import annotations

import random
import statistics
import time

from tuxai.hardware.simulated import inventory_from_yaml
from tuxai.model.resources import Request
from tuxai.scheduler import Job, Node, Running, SchedulerConfig, Snapshot, Start, decide

NODE_YAML = """
host: {{hostname: n{index:04d}, memory: 2TiB}}
cpu: {{sockets: 2, cores_per_socket: 64, threads_per_core: 2, numa_nodes: 8}}
gpus: {{model: NVIDIA A100-SXM4-80GB, count: 8, memory: 80GiB, numa: [3, 3, 1, 1, 7, 7, 5, 5]}}
links: NV12
"""
SHAPES = [(1, 8), (1, 8), (1, 8), (2, 16), (4, 32), (8, 64), (1, 4)]


def _jobs(count: int, rng: random.Random, prefix: str) -> list[Job]:
    out = []
    for number in range(count):
        gpus, cpus = rng.choice(SHAPES)
        milli = rng.choice([250, 500]) if gpus == 1 and rng.random() < 0.2 else 1000
        out.append(
            Job(
                f"{prefix}{number}",
                f"user{rng.randrange(40)}",
                Request(gpus=gpus, gpu_milli=milli, cpus=cpus, memory_bytes=rng.randrange(1, 64) * 2**30),
                submitted_at=float(number),
                time_limit_s=float(rng.choice([600, 3600, 14400, 86400])),
                priority=rng.randrange(0, 20),
            )
        )
    return out


def scenario(gpus: int, pending: int, seed: int = 1) -> Snapshot:
    """A full cluster of 8-GPU nodes and ``pending`` queued jobs."""
    rng = random.Random(seed)
    nodes = tuple(Node(f"n{i:04d}", inventory_from_yaml(NODE_YAML.format(index=i))) for i in range(gpus // 8))
    config = SchedulerConfig(preemption=False)
    fill = _jobs(gpus * 2, rng, "r")
    first = decide(Snapshot(nodes, 0.0, tuple(fill), config=config))
    by_id = {j.id: j for j in fill}
    running = tuple(Running(by_id[d.job_id], d.allocation, 0.0) for d in first if isinstance(d, Start))
    return Snapshot(nodes, 10.0, tuple(_jobs(pending, rng, "p")), running, config=config)


def measure(snapshot: Snapshot, repeat: int = 5) -> tuple[float, float]:
    """Median seconds of ``decide`` and of the baseline queue sort."""
    runs, sorts = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        decide(snapshot)
        runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        sorted(snapshot.pending, key=lambda j: (j.submitted_at, j.id))
        sorts.append(time.perf_counter() - started)
    return statistics.median(runs), statistics.median(sorts)


def main() -> None:
    """Print the target case, then the scaling table."""
    for gpus, pending in [(1024, 10_000), (128, 1_000), (1024, 1_000), (1024, 20_000), (2048, 10_000)]:
        snapshot = scenario(gpus, pending)
        seconds, baseline = measure(snapshot)
        used = sum(len(r.allocation.gpus) for r in snapshot.running)
        mark = f"  target < 100 ms: {'OK' if seconds < 0.1 else 'MISSED'}" if (gpus, pending) == (1024, 10_000) else ""
        print(
            f"decide: {pending:>6} pending × {gpus:>5} GPUs ({len(snapshot.running)} running, {used} GPU shares held): "
            f"{seconds * 1000:7.1f} ms  (queue sort {baseline * 1000:.1f} ms, ratio {seconds / baseline:.0f}x){mark}"
        )


if __name__ == "__main__":
    main()
