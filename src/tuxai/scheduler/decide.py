"""``decide(snapshot)``: admission, multifactor order, placement, EASY backfill, preemption."""

from __future__ import annotations

import math
from dataclasses import replace

from tuxai.model.resources import Allocation, Request
from tuxai.scheduler.admission import gang_rejection, rejection
from tuxai.scheduler.capacity import NodeFree, free_state
from tuxai.scheduler.decisions import Decision, Limited, Preempt, Reject, Reserve, Start
from tuxai.scheduler.gang import gang_reservation, gang_waiting_for, place_job
from tuxai.scheduler.placement import place, type_matches
from tuxai.scheduler.priority import Ranked, queue_order, time_limit
from tuxai.scheduler.quotas import Tally
from tuxai.scheduler.snapshot import Job, Running, Snapshot
from tuxai.scheduler.unavailable import mark_outside, mig_note, outside_note

Ends = dict[tuple[str, int], tuple[float, Allocation]]  # (job, its n-th node) → when and what comes back


def _copy(state: list[NodeFree]) -> list[NodeFree]:
    return [node.copy() for node in state]


def _by_name(state: list[NodeFree]) -> dict[str, NodeFree]:
    return {node.name: node for node in state}


def _could_host(node: NodeFree, request: Request) -> bool:
    """A cheap necessary condition: the node, empty, has enough of every kind the request asks."""
    inventory = node.inventory
    if request.cpus > inventory.cpu.logical_cpus or request.memory_bytes > (inventory.host.memory_total_bytes or 0):
        return False
    gpus = [g for g in node.gpus if type_matches(g.name, request.gpu_types)]
    if request.mig_profile is not None:
        return sum(1 for g in gpus if g.mig) > 0
    if request.gpus == 0:
        return True
    return sum(1 for g in gpus if not g.mig) >= (1 if request.shared else request.gpus)


def _reservation(
    state: list[NodeFree],
    request: Request,
    ends: list[tuple[float, Allocation]],
    held: list[Allocation] | None = None,
    free_now: dict[str, frozenset[int]] | None = None,
    hosts: dict[Request, frozenset[str]] | None = None,
) -> tuple[float, Allocation] | None:
    """When and where a blocked job fits if running jobs end at their time limits, soonest first.

    ``held``: earlier reservations, which keep their GPUs and CPUs whatever ends.
    """
    if free_now is None:
        free_now = {n.name: frozenset(g.index for g in n.gpus if g.whole_free) for n in state}
    current = _by_name(state)
    # Nodes that could hold the request if empty; releases elsewhere cannot help it.
    hosts = {} if hosts is None else hosts
    if request not in hosts:
        hosts[request] = frozenset(n.name for n in state if _could_host(n, request))
    possible = hosts[request]
    trial: dict[str, NodeFree] = {}
    for end, allocation in sorted(ends, key=lambda item: item[0]):
        if allocation.node not in possible:
            continue
        node = trial.setdefault(allocation.node, current[allocation.node].copy())
        node.give(allocation)
        for reserved in held or ():
            if reserved.node == node.name:
                node.take(reserved, clamp=True, memory=False)
        # It did not fit before: only the node that just got resources back can take it now.
        placed = place([node], request, avoid=free_now)
        if placed is not None:
            return end, placed
    return None


def _victims(
    state: list[NodeFree], head: Job, running: tuple[Running, ...], now: float, gap: int
) -> list[Running] | None:
    """The preemptible jobs ``gap`` or more below the head's priority to stop so it fits, losing the least work."""
    best: tuple[float, list[Running]] | None = None
    for node in state:
        candidates = [
            r
            for r in running
            if r.allocation.node == node.name
            and r.job.preemptible
            and not r.draining
            and not r.allocation.more  # a gang is stopped whole, never for one node's room
            and head.priority - r.job.priority >= gap
        ]
        candidates.sort(key=lambda r: ((now - r.started_at) * max(r.job.request.gpu_equivalents, 0.1), r.job.id))
        trial = node.copy()
        chosen: list[Running] = []
        for victim in candidates:
            trial.give(victim.allocation)
            chosen.append(victim)
            if place([trial], head.request) is not None:
                lost = sum((now - v.started_at) * max(v.job.request.gpu_equivalents, 0.1) for v in chosen)
                if best is None or lost < best[0]:
                    best = (lost, chosen)
                break
    return None if best is None else best[1]


def _reserve(
    job: Job,
    explanation: dict[str, object],
    view: list[NodeFree],
    ends: list[tuple[float, Allocation]],
    held: list[tuple[float, Allocation]],
    decisions: list[Decision],
    free_now: dict[str, frozenset[int]],
    hosts: dict[Request, frozenset[str]],
) -> list[NodeFree] | None:
    """Reserve for a blocked job; returns the view of what is free now outside every reservation.

    ``view`` is free-now minus earlier reservations; the node reserved on becomes a copy.
    """
    kept = [where for _, where in held]
    if job.nodes > 1:
        reserved = gang_reservation(view, job, ends, kept, free_now)
    else:
        one = _reservation(view, job.request, ends, kept, free_now, hosts)
        reserved = None if one is None else (one[0], (one[1],))
    if reserved is None:
        return None
    at, places = reserved
    explanation["reserved_on"] = ", ".join(where.node for where in places)
    decisions.append(Reserve(job.id, at, explanation))
    held.extend((at, where) for where in places)
    names = {where.node for where in places}
    outside = [node.copy() if node.name in names else node for node in view]
    for where in places:
        _by_name(outside)[where.node].take(where, clamp=True)
    return outside


def _fits_after_draining(state: list[NodeFree], request: Request, running: tuple[Running, ...]) -> bool:
    """Whether the jobs already told to stop free enough: then nobody more is preempted."""
    draining = [r for r in running if r.draining]
    if not draining:
        return False
    trial = _copy(state)
    nodes = _by_name(trial)
    for victim in draining:
        if victim.allocation.node in nodes:
            nodes[victim.allocation.node].give(victim.allocation)
    return place(trial, request) is not None


def _blocked(state: list[NodeFree], job: Job) -> str:
    """Why the job cannot start now, in words (a gang names the nodes it waits for)."""
    return gang_waiting_for(state, job) if job.nodes > 1 else _blocked_reason(state, job.request)


def _blocked_reason(state: list[NodeFree], request: Request) -> str:
    notes = (mig_note([g for n in state for g in n.inventory.gpus], request), outside_note(state, request))
    return "; ".join([_waiting_for(state, request), *(n for n in notes if n)])


def _taken(placed: tuple[Allocation, ...], job: Job, by_name: dict[str, NodeFree], ends: Ends, end: float) -> None:
    """A start's allocations taken from what is free, each given back at ``end``."""
    for number, allocation in enumerate(placed):
        by_name[allocation.node].take(allocation)
        ends[(job.id, number)] = (end, allocation)


def _gang(placed: tuple[Allocation, ...]) -> Allocation:
    """One allocation for a start: the first node's, a gang's other nodes in its ``more``."""
    return replace(placed[0], more=placed[1:]) if len(placed) > 1 else placed[0]


def _waiting_for(state: list[NodeFree], request: Request) -> str:
    if request.mig_profile is not None:
        return f"waiting for {request.gpus} free MIG instance(s) of profile {request.mig_profile}"
    if request.shared:
        return "waiting for a GPU with room for this slice"
    if request.gpus:
        most = max((n.whole_gpus_free for n in state), default=0)
        gpus = f"{request.gpus} free GPU{'s' if request.gpus != 1 else ''}"
        return f"waiting for {gpus} on one node (the most free on a node now: {most})"
    return "waiting for CPUs or memory"


def decide(snapshot: Snapshot, order: list[Ranked] | None = None) -> list[Decision]:
    """Decisions for this instant: who starts where, who is preempted, when blocked jobs will run.

    ``order``: ``queue_order(snapshot)`` when the caller computed it already (to show its numbers).
    """
    config = snapshot.config
    now = snapshot.now
    nodes = [(n.name, n.inventory) for n in sorted(snapshot.nodes, key=lambda n: n.name)]
    state = list(free_state(nodes, [(a.node, a) for r in snapshot.running for a in r.allocations]).values())
    mark_outside(state, snapshot.busy_outside)
    # Draining jobs still hold their resources now but give them back at once for planning.
    # When each allocation comes back, by job id (a preempted job's end moves to now).
    ends: Ends = {
        (r.job.id, number): (now if r.draining else max(now, r.started_at + time_limit(r.job, config)), allocation)
        for r in snapshot.running
        for number, allocation in enumerate(r.allocations)
    }
    by_name = _by_name(state)
    decisions: list[Decision] = []
    hosts: dict[Request, frozenset[str]] = {}  # which nodes could ever host a request, this pass
    rejected: dict[tuple[Request, int], str | None] = {}
    head: Job | None = None
    shadow = math.inf
    outside: list[NodeFree] | None = None  # free now and outside every reservation
    held: list[tuple[float, Allocation]] = []  # the reservations made in this pass, in order
    free_now: dict[str, frozenset[int]] = {}
    failed_now: set[tuple[Request, int]] = set()  # (request, nodes)
    failed_outside: set[tuple[Request, int]] = set()
    running = ((r.job.user, r.job.groups, r.job.request.gpu_equivalents) for r in snapshot.running)
    tally = Tally(snapshot.quotas, running, snapshot.quota_use)  # quotas: GPUs held, GPU-hours used
    for rank, ranked in enumerate(queue_order(snapshot) if order is None else order, start=1):
        job = ranked.job
        shape = (job.request, job.nodes)
        if shape not in rejected:
            many = job.nodes > 1
            rejected[shape] = gang_rejection(*shape, snapshot.nodes) if many else rejection(job, snapshot.nodes)
        reason = rejected[shape]
        if reason is not None:
            decisions.append(Reject(job.id, reason))
            continue
        limited = tally.blocked(job.user, job.groups, job.request.gpu_equivalents * job.nodes)
        if limited is not None:  # a cap holds it: it neither starts, reserves nor preempts
            decisions.append(Limited(job.id, limited))
            continue
        limit = time_limit(job, config)
        if head is None:
            placed = place_job(state, job)
            explanation: dict[str, object] = {"rank": rank, "score": round(ranked.score, 2), **ranked.explain()}
            if placed is not None:
                decisions.append(Start(job.id, _gang(placed), explanation))
                _taken(placed, job, by_name, ends, now + limit)
                tally.take(job.user, job.groups, job.request.gpu_equivalents * job.nodes)
                continue
            head = job
            explanation["reason"] = _blocked(state, job)
            if config.preemption and job.nodes == 1 and not _fits_after_draining(state, job.request, snapshot.running):
                victims = _victims(state, job, snapshot.running, now, max(1, config.preempt_min_priority_gap))
                if victims:
                    for victim in victims:
                        decisions.append(Preempt(victim.job.id, job.id, f"preempted for higher-priority job {job.id}"))
                        ends[(victim.job.id, 0)] = (now, victim.allocation)
                    explanation["preempting"] = [v.job.id for v in victims]
            free_now = {n.name: frozenset(g.index for g in n.gpus if g.whole_free) for n in state}
            outside = _reserve(job, explanation, state, list(ends.values()), held, decisions, free_now, hosts)
            if outside is not None:
                shadow = min(shadow, held[-1][0])
            if not config.backfill:
                break
            continue
        # Backfill: start only what cannot delay a reservation (EASY when there is one).
        # Resources only shrink during a pass: a request that failed once fails again.
        placed = None
        if outside is None:
            if shape not in failed_now:
                placed = place_job(state, job)
                if placed is None:
                    failed_now.add(shape)
        else:
            if shape not in failed_outside:
                placed = place_job(outside, job)
                if placed is None:
                    failed_outside.add(shape)
            if placed is None and now + limit <= shadow and shape not in failed_now:
                placed = place_job(state, job)
                if placed is None:
                    failed_now.add(shape)
        if placed is None:
            if len(held) < config.reservations and outside is not None:
                explanation = {"rank": rank, "score": round(ranked.score, 2), **ranked.explain()}
                explanation["reason"] = _blocked(state, job)
                view = _reserve(job, explanation, outside, list(ends.values()), held, decisions, free_now, hosts)
                if view is not None:
                    outside = view
                    shadow = min(shadow, held[-1][0])
            continue
        explanation = {"rank": rank, "score": round(ranked.score, 2), **ranked.explain(), "backfilled_before": head.id}
        decisions.append(Start(job.id, _gang(placed), explanation, backfilled=True))
        _taken(placed, job, by_name, ends, now + limit)
        tally.take(job.user, job.groups, job.request.gpu_equivalents * job.nodes)
        for allocation in placed:
            if outside is not None and any(allocation.node == where.node for _, where in held):
                _by_name(outside)[allocation.node].take(allocation, clamp=True)
    return decisions
