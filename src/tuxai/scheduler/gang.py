"""A gang across nodes: ``nodes`` × one share (``Job.request``), placed all or nothing. Pure.

``place_job`` places any job as a tuple of allocations — one for a job of one node, one per node
for a gang, on distinct nodes, each node chosen as ``place`` chooses (best links, tightest fit) —
or None when not every share fits now. ``gang_reservation`` is a gang's reservation: the soonest
instant, as running jobs end at their time limits, when every share fits at once, so backfill
treats the gang as one job. ``gang_waiting_for`` names the nodes it waits for.
"""

from __future__ import annotations

from tuxai.model.resources import Allocation, Request
from tuxai.scheduler.capacity import NodeFree
from tuxai.scheduler.placement import place
from tuxai.scheduler.snapshot import Job

Avoid = dict[str, frozenset[int]]


def place_gang(
    state: list[NodeFree], request: Request, count: int, avoid: Avoid | None = None
) -> tuple[Allocation, ...] | None:
    """``count`` shares of ``request`` on ``count`` distinct nodes (the first is the master), or None."""
    left, chosen = list(state), []
    for _ in range(count):
        allocation = place(left, request, avoid)
        if allocation is None:
            return None
        chosen.append(allocation)
        left = [node for node in left if node.name != allocation.node]
    return tuple(chosen)


def place_job(state: list[NodeFree], job: Job, avoid: Avoid | None = None) -> tuple[Allocation, ...] | None:
    """Where the job runs now: one allocation per node it asks (all of them or None)."""
    return place_gang(state, job.request, job.nodes, avoid)


def gang_reservation(
    state: list[NodeFree],
    job: Job,
    ends: list[tuple[float, Allocation]],
    held: list[Allocation],
    avoid: Avoid,
) -> tuple[float, tuple[Allocation, ...]] | None:
    """When and where every share of a blocked gang fits at once, running jobs ending at their limits.

    ``held``: earlier reservations, which keep their resources whatever ends.
    """
    trial = {node.name: node.copy() for node in state}
    for end, allocation in sorted(ends, key=lambda item: item[0]):
        node = trial.get(allocation.node)
        if node is None:
            continue
        node.give(allocation)
        for reserved in held:
            if reserved.node == node.name:
                node.take(reserved, clamp=True, memory=False)
        placed = place_gang(list(trial.values()), job.request, job.nodes, avoid)
        if placed is not None:
            return end, placed
    return None


def gang_waiting_for(state: list[NodeFree], job: Job) -> str:
    """What a blocked gang waits for, naming the nodes whose share is not free now.

    ``"waiting for 2 nodes with 2 free GPUs each (short now: on w2: 1 of 2 GPUs); 1 can take one now (w1)"``
    """
    request = job.request
    fits = [node for node in state if place([node], request) is not None]
    share = (
        f"{request.gpus} free GPU{'' if request.gpus == 1 else 's'}" if request.gpus else f"{request.cpus} free CPUs"
    )
    short = [node for node in state if node not in fits and (request.gpus == 0 or node.gpus)]
    counts = ", ".join(f"on {n.name}: {n.whole_gpus_free} of {len(n.gpus)} GPUs" for n in short[:4])
    more = f" and {len(short) - 4} more" if len(short) > 4 else ""
    ready = f"; {len(fits)} can take one now ({', '.join(n.name for n in fits[:4])})" if fits else ""
    return f"waiting for {job.nodes} nodes with {share} each (short now: {counts}{more}){ready}"
