"""Invariants of decide: no over-allocation, gang, backfill never delays the head, determinism."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.scheduler_helpers import DGX, MI250X, WORKSTATION
from tuxai.model.resources import WHOLE_GPU_MILLI, Request
from tuxai.scheduler import Job, Node, Reserve, Running, SchedulerConfig, Snapshot, Start, decide
from tuxai.scheduler.config import BACKFILL

GIB = 1024**3
NODES = st.sampled_from([(WORKSTATION,), (DGX,), (WORKSTATION, MI250X), (DGX, WORKSTATION)])


@st.composite
def requests(draw: st.DrawFn) -> Request:
    kind = draw(st.sampled_from(["whole", "whole", "shared", "mig", "cpu"]))
    cpus = draw(st.integers(1, 48))
    memory = draw(st.integers(0, 300)) * GIB
    types = draw(st.sampled_from([(), (), ("A100",), ("MI250X",), ("RTX 6000",)]))
    if kind == "whole":
        return Request(gpus=draw(st.integers(1, 9)), cpus=cpus, memory_bytes=memory, gpu_types=types)
    if kind == "shared":
        mem = draw(st.one_of(st.none(), st.integers(1, 60).map(lambda g: g * GIB)))
        return Request(gpus=1, gpu_milli=draw(st.integers(50, 999)), gpu_mem_bytes=mem, cpus=cpus, gpu_types=types)
    if kind == "mig":
        return Request(gpus=draw(st.integers(1, 3)), mig_profile="1g.10gb", cpus=cpus)
    return Request(gpus=0, cpus=cpus, memory_bytes=memory)


@st.composite
def jobs(draw: st.DrawFn, prefix: str, count: int) -> tuple[Job, ...]:
    out = []
    for number in range(draw(st.integers(0, count))):
        out.append(
            Job(
                id=f"{prefix}{number}",
                user=draw(st.sampled_from(["ann", "bob", "cy"])),
                request=draw(requests()),
                submitted_at=float(draw(st.integers(0, 1000))),
                time_limit_s=float(draw(st.sampled_from([60, 600, 3600, 86400]))),
                priority=draw(st.integers(0, 100)),
                preemptible=draw(st.booleans()),
            )
        )
    return tuple(out)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    nodes = draw(NODES)
    config = draw(
        st.sampled_from(
            [
                SchedulerConfig(),
                BACKFILL,
                replace(SchedulerConfig(), preemption=False),
                replace(BACKFILL, reservations=3),
            ]
        )
    )
    # Running jobs come from a first decide on the empty cluster, so they are a real state.
    first = Snapshot(nodes, 1000.0, draw(jobs("r", 8)), config=config)
    by_id = {j.id: j for j in first.pending}
    running = tuple(
        Running(by_id[d.job_id], d.allocation, float(draw(st.integers(0, 1000))))
        for d in decide(first)
        if isinstance(d, Start)
    )
    usage = {u: float(draw(st.integers(0, 10**6))) for u in ("ann", "bob", "cy")}
    return Snapshot(nodes, 2000.0, draw(jobs("p", 10)), running, usage, config)


def _check_no_over_allocation(nodes: tuple[Node, ...], allocations: list[tuple[Request, object]]) -> None:
    milli: dict[tuple[str, int], int] = defaultdict(int)
    memory: dict[tuple[str, int], int] = defaultdict(int)
    whole: dict[tuple[str, int], int] = defaultdict(int)
    mig: set[tuple[str, int, int]] = set()
    cpus: set[tuple[str, int]] = set()
    host_memory: dict[str, int] = defaultdict(int)
    inventories = {n.name: n.inventory for n in nodes}
    for _request, allocation in allocations:
        node = allocation.node  # type: ignore[attr-defined]
        inventory = inventories[node]
        for share in allocation.gpus:  # type: ignore[attr-defined]
            gpu = inventory.gpus[share.index]
            key = (node, share.index)
            if share.mig_index is not None:
                assert gpu.mig_enabled and (node, share.index, share.mig_index) not in mig
                mig.add((node, share.index, share.mig_index))
                continue
            assert not gpu.mig_enabled
            milli[key] += share.milli
            if share.memory_bytes is None:
                whole[key] += 1
            else:
                memory[key] += share.memory_bytes
            assert milli[key] <= WHOLE_GPU_MILLI
            assert whole[key] <= 1 and (whole[key] == 0 or (milli[key] == WHOLE_GPU_MILLI and memory[key] == 0))
            assert memory[key] <= (gpu.memory_total_bytes or 0)
        for cpu in allocation.cpus:  # type: ignore[attr-defined]
            assert (node, cpu) not in cpus
            cpus.add((node, cpu))
        host_memory[node] += allocation.memory_bytes  # type: ignore[attr-defined]
        assert host_memory[node] <= (inventory.host.memory_total_bytes or 0)


@settings(max_examples=120, deadline=None)
@given(snapshots())
def test_no_decision_over_allocates_and_gangs_are_whole(snapshot: Snapshot) -> None:
    decisions = decide(snapshot)
    pending = {j.id: j for j in snapshot.pending}
    starts = [d for d in decisions if isinstance(d, Start)]
    held = [(r.job.request, r.allocation) for r in snapshot.running]
    _check_no_over_allocation(snapshot.nodes, held + [(pending[s.job_id].request, s.allocation) for s in starts])
    for start in starts:
        request = pending[start.job_id].request
        assert len(start.allocation.cpus) == request.cpus
        assert start.allocation.memory_bytes == request.memory_bytes
        expected = 1 if request.shared else request.gpus
        assert len(start.allocation.gpus) == expected
        if request.mig_profile:
            assert all(g.mig_uuid for g in start.allocation.gpus)
    assert len({d.job_id for d in decisions if not isinstance(d, Reserve)}) == len(
        [d for d in decisions if not isinstance(d, Reserve)]
    )


@settings(max_examples=120, deadline=None)
@given(snapshots())
def test_backfill_never_delays_a_reservation(snapshot: Snapshot) -> None:
    decisions = decide(snapshot)
    reserves = [d for d in decisions if isinstance(d, Reserve)]
    if not reserves:
        return
    assert len(reserves) <= snapshot.config.reservations
    pending = {j.id: j for j in snapshot.pending}
    now_running = snapshot.running + tuple(
        Running(pending[d.job_id], d.allocation, snapshot.now) for d in decisions if isinstance(d, Start)
    )
    # The reserved jobs alone, with everything that just started running: none is reserved later.
    again = decide(replace(snapshot, pending=tuple(pending[r.job_id] for r in reserves), running=now_running))
    later = {d.job_id: d.at for d in again if isinstance(d, Reserve)}
    started_now = {d.job_id for d in again if isinstance(d, Start)}
    head = reserves[0]
    assert head.job_id in started_now or later.get(head.job_id, float("inf")) <= head.at + 1e-9, (head, later)
    for reserve in reserves[1:]:
        if reserve.job_id in later:
            assert later[reserve.job_id] <= reserve.at + 1e-9, (reserve, later)


@settings(max_examples=60, deadline=None)
@given(snapshots(), st.randoms(use_true_random=False))
def test_decide_is_deterministic_and_ignores_queue_order(snapshot: Snapshot, rng: object) -> None:
    first = decide(snapshot)
    assert decide(snapshot) == first
    shuffled = list(snapshot.pending)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert decide(replace(snapshot, pending=tuple(shuffled))) == first
