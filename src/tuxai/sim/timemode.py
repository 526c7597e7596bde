"""Time mode: a drawn workload arrives over time and runs on a sampled cluster through ``decide``.

Shapes come from the pod list, runtimes from a runtime list (Philly), arrivals
are Poisson at an offered load; each job's time limit is its runtime × a
seeded factor in [1, 3]. Every arrival and completion calls the real
``tuxai.scheduler.decide`` on a snapshot of the simulated cluster.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import accumulate

from tuxai.errors import UsageError
from tuxai.model.cpu import CpuTopology, NumaNode
from tuxai.model.gpu import Gpu, Vendor
from tuxai.model.inventory import Host, Inventory
from tuxai.model.resources import Request
from tuxai.scheduler import Job, Node, Running, Snapshot, Start, decide
from tuxai.scheduler.admission import rejection
from tuxai.scheduler.config import BACKFILL, FIFO, SchedulerConfig, parse_scheduler_config
from tuxai.sim.openb import OpenbNode, OpenbPod

TIME_POLICIES: dict[str, SchedulerConfig] = {
    "fifo": FIFO,
    "backfill": BACKFILL,
    "sjf": replace(FIFO, weight_age=0.0, weight_short=1.0, backfill=True),
    # Short time limits first (close to shortest-first) with backfill; multi-GPU jobs keep their
    # place in arrival order ahead of the rest, age catches up within six hours, and the first eight
    # blocked jobs hold reservations, so large jobs are not starved (bench/sim-results.md).
    "tuxai": SchedulerConfig(
        weight_priority=0.0,
        weight_fairshare=0.0,
        weight_age=1000.0,
        max_age_s=6 * 3600.0,
        weight_size=300.0,
        favor_small=False,
        weight_short=1000.0,
        protect_gpus=2,
        reservations=8,
        preemption=False,
    ),
}
QOS_PRIORITY = {"LS": 10, "Guaranteed": 10, "Burstable": 5, "BE": 0}
MIB = 1024**2


@dataclass(frozen=True)
class SimJob:
    """A drawn job: its shape, arrival, true runtime and the time limit backfill sees."""

    job: Job
    runtime_s: float


@dataclass(frozen=True)
class TimeResult:
    """One policy's run: completion and waiting times, overall and by size."""

    policy: str
    seed: int
    jobs: int
    rejected: int
    avg_jct_s: float
    p95_jct_s: float
    avg_wait_s: float
    p95_wait_s: float
    makespan_s: float
    p95_wait_by_gpus_s: dict[str, float]
    avg_jct_by_gpus_s: dict[str, float]
    allocation: tuple[tuple[float, float], ...]  # (time, allocated GPU share), sampled


PolicyConfig = SchedulerConfig  # what --scheduler-config gives the tuxai policy


def policy_config(text: str, origin: str) -> SchedulerConfig:
    """A scheduler configuration file for the ``tuxai`` policy (``tuxai sim --scheduler-config``).

    Raises:
        ConfigError: the file is malformed (see ``parse_scheduler_config``).
    """
    return parse_scheduler_config(text, origin)


def node_inventory(node: OpenbNode) -> Inventory:
    """A simulated inventory for one trace node: its GPUs (by model), CPUs and memory."""
    cpus = max(1, node.cpu_milli // 1000)
    gpus = tuple(
        Gpu(Vendor.NVIDIA, index=i, name=node.model, uuid=f"{node.name}-gpu{i}", numa_node=0) for i in range(node.gpus)
    )
    return Inventory(
        host=Host(node.name, "simulated", "simulated", node.memory_mib * MIB),
        cpu=CpuTopology(node.model, 1, cpus, 1, tuple(range(cpus)), (NumaNode(0, tuple(range(cpus))),)),
        gpus=gpus,
        source=f"simulated:openb/{node.name}",
    )


def request_of(pod: OpenbPod) -> Request:
    """An openb pod's request: whole GPUs, or a milli-GPU slice of one."""
    return Request(
        gpus=pod.num_gpu,
        gpu_milli=pod.gpu_milli if pod.num_gpu == 1 else 1000,
        gpu_types=pod.gpu_spec,
        cpus=max(1, math.ceil(pod.cpu_milli / 1000)),
        memory_bytes=pod.memory_mib * MIB,
    )


def size_label(request: Request) -> str:
    """``"0"`` CPU-only, ``"<1"`` a shared slice, else the GPU count."""
    if request.gpus == 0:
        return "0"
    return "<1" if request.shared else str(request.gpus)


def _offered_load(arrivals: list[float], jobs: list[tuple[Request, float]], capacity: int) -> float:
    window = arrivals[-1] or 1.0
    demand = sum(r.gpu_equivalents * min(runtime, window - at) for at, (r, runtime) in zip(arrivals, jobs, strict=True))
    return demand / window / capacity


def draw_workload(
    nodes: tuple[OpenbNode, ...],
    pods: tuple[OpenbPod, ...],
    runtimes: list[float],
    count: int,
    node_count: int,
    load: float,
    seed: int,
) -> tuple[tuple[Node, ...], list[SimJob]]:
    """The sampled cluster and the drawn jobs (shapes that some sampled node can hold).

    Raises:
        UsageError: impossible parameters (more nodes than the list, no runtimes, no admissible shape).
    """
    if not 0 < node_count <= len(nodes):
        raise UsageError(f"--nodes must be between 1 and {len(nodes)}, got {node_count}", hint="e.g. --nodes 64")
    if count <= 0 or load <= 0:
        raise UsageError("--count and --load must be positive", hint="e.g. --count 5000 --load 0.95")
    if not runtimes:
        raise UsageError("the runtime list is empty", hint="pass --runtimes philly_runtime.csv")
    rng = random.Random(seed)
    chosen = sorted(rng.sample(list(nodes), node_count), key=lambda n: n.name)
    cluster = tuple(Node(n.name, node_inventory(n)) for n in chosen)
    capacity = sum(n.gpus for n in chosen)
    if capacity == 0:
        raise UsageError("the sampled nodes have no GPUs", hint="sample more --nodes or check the node list")
    shapes = [p for p in pods if rejection(Job("probe", "sim", request_of(p), 0.0), cluster) is None]
    if not shapes:
        raise UsageError("no pod shape of the list fits the sampled nodes", hint="sample more --nodes")
    picked = [(rng.choice(shapes), float(rng.choice(runtimes))) for _ in range(count)]
    drawn = [(request_of(pod), runtime) for pod, runtime in picked]
    unit = [rng.expovariate(1.0) for _ in range(count)]
    cumulative = list(accumulate(unit))
    low, high = 1e-9, 1e3  # arrival rate (jobs per second), found by bisection on the offered load
    for _ in range(100):
        rate = math.sqrt(low * high)
        if _offered_load([c / rate for c in cumulative], drawn, capacity) > load:
            high = rate
        else:
            low = rate
    rate = math.sqrt(low * high)
    factors = [rng.uniform(1.0, 3.0) for _ in range(count)]
    users = [f"user{rng.randrange(16)}" for _ in range(count)]
    jobs = [
        SimJob(
            Job(
                id=f"j{i:05d}",
                user=users[i],
                request=request,
                submitted_at=cumulative[i] / rate,
                time_limit_s=max(1.0, runtime * factors[i]),
                # The trace's QoS class: best-effort pods may be preempted, latency-sensitive ones rank higher
                # (used by a --scheduler-config that turns on priority weights or preemption).
                priority=QOS_PRIORITY.get(picked[i][0].qos, 0),
                preemptible=picked[i][0].qos == "BE",
            ),
            runtime,
        )
        for i, (request, runtime) in enumerate(drawn)
    ]
    return cluster, jobs


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def replay_time(
    cluster: tuple[Node, ...],
    jobs: list[SimJob],
    policy: str,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    config: SchedulerConfig | None = None,
) -> TimeResult:
    """Run the jobs through ``decide`` under one policy's configuration (``config`` overrides it).

    Raises:
        UsageError: a policy time mode does not know.
    """
    if policy not in TIME_POLICIES:
        raise UsageError(
            f"policy {policy!r} is not a time-mode policy", hint=f"time mode runs {', '.join(TIME_POLICIES)}"
        )
    config = config or TIME_POLICIES[policy]
    capacity = sum(len(n.inventory.gpus) for n in cluster)
    runtime_of = {j.job.id: j.runtime_s for j in jobs}
    arrivals = sorted(jobs, key=lambda j: (j.job.submitted_at, j.job.id))
    pending: dict[str, Job] = {}
    running: dict[str, Running] = {}
    ends: list[tuple[float, str]] = []
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    rejected = 0
    allocation: list[tuple[float, float]] = []
    next_arrival = 0
    now = 0.0
    while next_arrival < len(arrivals) or running or pending:
        candidates = []
        if next_arrival < len(arrivals):
            candidates.append(arrivals[next_arrival].job.submitted_at)
        if ends:
            candidates.append(min(ends)[0])
        if not candidates:
            break  # pending jobs that can never start: admission rejected them below
        now = max(now, min(candidates))
        while next_arrival < len(arrivals) and arrivals[next_arrival].job.submitted_at <= now:
            job = arrivals[next_arrival].job
            pending[job.id] = job
            next_arrival += 1
        for end, job_id in [e for e in ends if e[0] <= now]:
            finished[job_id] = end
            running.pop(job_id)
        ends = [e for e in ends if e[0] > now]
        snapshot = Snapshot(cluster, now, tuple(pending.values()), tuple(running.values()), config=config)
        for decision in decide(snapshot):
            if isinstance(decision, Start):
                job = pending.pop(decision.job_id)
                running[job.id] = Running(job, decision.allocation, now)
                started[job.id] = now
                ends.append((now + runtime_of[job.id], job.id))
            elif type(decision).__name__ == "Reject":
                pending.pop(decision.job_id, None)
                rejected += 1
        used = sum(r.job.request.gpu_equivalents for r in running.values())
        allocation.append((now, used / capacity if capacity else 0.0))
        if progress is not None:
            progress(len(finished) + rejected, len(jobs))
    submitted = {j.job.id: j.job.submitted_at for j in jobs}
    done = [i for i in finished]
    jct = [finished[i] - submitted[i] for i in done]
    wait = [started[i] - submitted[i] for i in done]
    by_size: dict[str, list[float]] = defaultdict(list)
    jct_by_size: dict[str, list[float]] = defaultdict(list)
    request_of_job = {j.job.id: j.job.request for j in jobs}
    for job_id in done:
        label = size_label(request_of_job[job_id])
        by_size[label].append(started[job_id] - submitted[job_id])
        jct_by_size[label].append(finished[job_id] - submitted[job_id])
    step = max(1, len(allocation) // 500)
    return TimeResult(
        policy=policy,
        seed=seed,
        jobs=len(jobs),
        rejected=rejected,
        avg_jct_s=sum(jct) / len(jct) if jct else 0.0,
        p95_jct_s=_percentile(jct, 0.95),
        avg_wait_s=sum(wait) / len(wait) if wait else 0.0,
        p95_wait_s=_percentile(wait, 0.95),
        makespan_s=(max(finished.values()) - min(submitted.values())) if finished else 0.0,
        p95_wait_by_gpus_s={k: _percentile(v, 0.95) for k, v in sorted(by_size.items())},
        avg_jct_by_gpus_s={k: sum(v) / len(v) for k, v in sorted(jct_by_size.items())},
        allocation=tuple(allocation[::step]),
    )
