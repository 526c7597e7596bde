"""Each rule of the scheduler, on the example machines."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.scheduler_helpers import DGX, MI250X, WORKSTATION, job, run, started
from tuxai.errors import ConfigError
from tuxai.scheduler import Preempt, Reject, Reserve, Running, SchedulerConfig, parse_scheduler_config
from tuxai.scheduler.config import BACKFILL, FIFO
from tuxai.scheduler.priority import fairshare
from tuxai.scheduler.snapshot import decay_usage

GIB = 1024**3


def test_multi_gpu_job_gets_the_best_links_and_local_cpus() -> None:
    # On the workstation GPU0-1 share NUMA node 0 (NODE), GPU2-3 node 1; across is SYS.
    (start,) = started(run((WORKSTATION,), (job("a", 2, cpus=8),))).values()
    pair = sorted(g.index for g in start.allocation.gpus)
    assert pair in ([0, 1], [2, 3])
    numa = 0 if pair == [0, 1] else 1
    cpus = WORKSTATION.inventory.cpu.node(numa).cpus  # type: ignore[union-attr]
    assert set(start.allocation.cpus) <= set(cpus) and len(start.allocation.cpus) == 8


def test_small_job_keeps_the_free_pair_whole() -> None:
    # GPU0 busy: a 1-GPU job goes to GPU1 (its NUMA neighbour), leaving GPU2-3 free for a pair.
    first = started(run((WORKSTATION,), (job("a", 1),)))["a"]
    running = (Running(job("a", 1), first.allocation, 0.0),)
    second = started(run((WORKSTATION,), (job("b", 1),), running=running))["b"]
    used = {g.index for g in first.allocation.gpus} | {g.index for g in second.allocation.gpus}
    assert used in ({0, 1}, {2, 3})


def test_shared_slices_pack_onto_one_gpu() -> None:
    pending = tuple(job(f"s{i}", 1, gpu_milli=250, gpu_mem_bytes=10 * GIB, at=i) for i in range(4))
    starts = started(run((WORKSTATION,), pending))
    assert len(starts) == 4
    assert len({s.allocation.gpus[0].index for s in starts.values()}) == 1
    assert all(s.allocation.gpus[0].milli == 250 for s in starts.values())
    # The fifth slice of that GPU's compute does not fit it: it goes to another GPU.
    running = tuple(Running(job(i, 1, gpu_milli=250), s.allocation, 0.0) for i, s in starts.items())
    fifth = started(run((WORKSTATION,), (job("s4", 1, gpu_milli=250),), running=running))["s4"]
    assert fifth.allocation.gpus[0].index != next(iter(starts.values())).allocation.gpus[0].index


def test_shared_memory_is_fenced() -> None:
    # 48 GiB GPUs: two 30 GiB slices cannot share one.
    starts = started(
        run(
            (WORKSTATION,),
            (
                job("a", 1, gpu_milli=100, gpu_mem_bytes=30 * GIB),
                job("b", 1, gpu_milli=100, gpu_mem_bytes=30 * GIB, at=1),
            ),
        )
    )
    assert starts["a"].allocation.gpus[0].index != starts["b"].allocation.gpus[0].index


def test_mig_instances_by_profile() -> None:
    pending = tuple(job(f"m{i}", 1, mig_profile="1g.10gb", at=i) for i in range(8))
    decisions = run((DGX,), pending)
    starts = started(decisions)
    assert len(starts) == 7  # GPU 0 has 7 × 1g.10gb
    uuids = {s.allocation.gpus[0].mig_uuid for s in starts.values()}
    assert len(uuids) == 7 and all(u and u.startswith("MIG-") for u in uuids)
    assert all(s.allocation.visible_devices.startswith("MIG-") for s in starts.values())
    assert any(isinstance(d, Reserve) and d.job_id == "m7" for d in decisions)


def test_mig_gpu_is_not_handed_out_whole() -> None:
    starts = started(run((DGX,), (job("big", 8),)))
    assert "big" not in starts  # only 7 whole GPUs: GPU 0 is split into MIG instances


def test_gpu_type_constraint() -> None:
    decisions = run((WORKSTATION, MI250X), (job("a", 1, gpu_types=("MI250X",)), job("b", 1, gpu_types=("H100",), at=1)))
    assert started(decisions)["a"].allocation.node == "mi"
    (reject,) = [d for d in decisions if isinstance(d, Reject)]
    assert reject.job_id == "b" and "no GPU of type H100" in reject.reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"gpus": 9}, "asks for 9 whole GPUs on one node"),
        ({"gpus": 1, "cpus": 512}, "asks for 512 CPUs"),
        ({"gpus": 1, "memory_bytes": 4096 * GIB}, "asks for 4.0 TiB of memory"),
        ({"gpus": 1, "mig_profile": "3g.40gb"}, "no node has 1 MIG instance(s) of profile 3g.40gb"),
    ],
)
def test_impossible_requests_are_rejected_with_what_the_box_has(changes: dict[str, object], reason: str) -> None:
    gpus = int(changes.pop("gpus"))  # type: ignore[call-overload]
    (decision,) = run((WORKSTATION,), (job("x", gpus, **changes),))
    assert isinstance(decision, Reject)
    assert reason in decision.reason and "ws: 4 × NVIDIA RTX 6000 Ada Generation, 64 CPUs, 384.0 GiB" in decision.reason


def test_gang_all_or_nothing() -> None:
    busy = started(run((WORKSTATION,), (job("a", 3),)))["a"]
    decisions = run((WORKSTATION,), (job("b", 2),), running=(Running(job("a", 3), busy.allocation, 0.0),))
    assert not started(decisions)
    (reserve,) = [d for d in decisions if isinstance(d, Reserve)]
    assert "waiting for 2 free GPUs on one node (the most free on a node now: 1)" in str(reserve.explanation["reason"])


def test_fifo_blocks_behind_the_head() -> None:
    busy = started(run((WORKSTATION,), (job("a", 3, time_limit_s=3600),)))["a"]
    running = (Running(job("a", 3, time_limit_s=3600), busy.allocation, 0.0),)
    pending = (job("head", 2, at=1), job("small", 1, at=2, time_limit_s=60))
    assert not started(run((WORKSTATION,), pending, running=running, config=FIFO))


def test_backfill_starts_what_ends_before_the_reservation() -> None:
    busy = started(run((WORKSTATION,), (job("a", 3, time_limit_s=3600),)))["a"]
    running = (Running(job("a", 3, time_limit_s=3600), busy.allocation, 0.0),)
    pending = (job("head", 2, at=1), job("short", 1, at=2, time_limit_s=600), job("long", 1, at=3, time_limit_s=7200))
    config = replace(FIFO, backfill=True)
    decisions = run((WORKSTATION,), pending, running=running, config=config)
    (reserve,) = [d for d in decisions if isinstance(d, Reserve)]
    assert reserve.job_id == "head" and reserve.at == 3600.0
    starts = started(decisions)
    assert set(starts) == {"short"} and starts["short"].backfilled


def test_backfill_may_run_long_jobs_outside_the_reservation() -> None:
    # Head wants 4 GPUs on the DGX (7 whole): with 5 busy until t=3600 a long 1-GPU job may still
    # use a GPU the head's reservation does not need.
    busy = started(run((DGX,), (job("a", 5, time_limit_s=3600),)))["a"]
    running = (Running(job("a", 5, time_limit_s=3600), busy.allocation, 0.0),)
    pending = (job("head", 6, at=1), job("long", 1, at=2, time_limit_s=10**6))
    decisions = run((DGX,), pending, running=running, config=replace(FIFO, backfill=True))
    assert "long" in started(decisions)


def test_preemption_frees_the_right_gpus_losing_least_work() -> None:
    old = job("old", 2, priority=0, preemptible=True, time_limit_s=10**6)
    new = job("new", 2, priority=0, preemptible=True, time_limit_s=10**6, at=1)
    first = started(run((WORKSTATION,), (old, new)))
    running = (Running(old, first["old"].allocation, 0.0), Running(new, first["new"].allocation, 90.0))
    urgent = job("urgent", 2, priority=50, at=95)
    decisions = run((WORKSTATION,), (urgent,), running=running)
    preempts = [d for d in decisions if isinstance(d, Preempt)]
    assert [p.job_id for p in preempts] == ["new"]  # started 10 s ago: the least work lost
    assert preempts[0].for_job == "urgent"
    (reserve,) = [d for d in decisions if isinstance(d, Reserve)]
    assert reserve.at == 100.0 and reserve.explanation["preempting"] == ["new"]  # as soon as the victim is gone
    # Next tick, with the victim draining, nothing more is preempted.
    draining = (running[0], replace(running[1], draining=True))
    assert not [d for d in run((WORKSTATION,), (urgent,), running=draining) if isinstance(d, Preempt)]


def test_no_preemption_of_protected_or_equal_priority_jobs() -> None:
    keep = job("keep", 4, priority=50, preemptible=True)
    allocation = started(run((WORKSTATION,), (keep,)))["keep"].allocation
    decisions = run((WORKSTATION,), (job("want", 2, priority=50),), running=(Running(keep, allocation, 0.0),))
    assert not [d for d in decisions if isinstance(d, Preempt)]
    off = replace(SchedulerConfig(), preemption=False)
    low = replace(keep, priority=0)
    decisions = run(
        (WORKSTATION,), (job("want", 2, priority=50),), running=(Running(low, allocation, 0.0),), config=off
    )
    assert not [d for d in decisions if isinstance(d, Preempt)]


def test_fair_share_puts_the_light_user_first() -> None:
    pending = (job("heavy-1", 4, user="heavy", at=0), job("light-1", 4, user="light", at=10))
    decisions = run((WORKSTATION,), pending, usage={"heavy": 1e6, "light": 0.0})
    starts = started(decisions)
    assert set(starts) == {"light-1"}
    (reserve,) = [d for d in decisions if isinstance(d, Reserve)]
    assert reserve.job_id == "heavy-1"
    explanation = starts["light-1"].explanation
    assert explanation["rank"] == 1 and explanation["fairshare_factor"] == 1.0
    assert reserve.explanation["fairshare_factor"] == 0.25  # 2^(-1/0.5)


def test_every_factor_is_explained() -> None:
    (start,) = started(run((WORKSTATION,), (job("a", 1, priority=30, time_limit_s=3600),))).values()
    for name in ("priority", "fairshare", "age", "size", "short"):
        assert f"{name}_factor" in start.explanation and name in start.explanation
    assert start.explanation["priority_factor"] == 0.3


def test_fairshare_and_decay() -> None:
    assert fairshare("a", {}, {"a", "b"}) == 1.0
    assert fairshare("a", {"a": 10, "b": 10}, {"a", "b"}) == 0.5
    assert decay_usage(100.0, 3600, 3600) == 50.0
    assert decay_usage(100.0, -5, 3600) == 100.0


def test_config_file() -> None:
    config = parse_scheduler_config("weight_age: 10\npreemption: false\nhalf_life_s: 3600\n")
    assert (config.weight_age, config.preemption, config.half_life_s) == (10, False, 3600)
    for text, message in [
        ("colour: 1", "unknown setting 'colour'"),
        ("preemption: 2", "preemption must be true or false"),
        ("weight_age: -1", "weight_age must be a number ≥ 0"),
        ("half_life_s: 0", "must be positive"),
        ("[", "not valid YAML"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
            parse_scheduler_config(text)


def test_amd_node_whole_gpus_over_xgmi() -> None:
    (start,) = started(run((MI250X,), (job("a", 4),))).values()
    assert len(start.allocation.gpus) == 4
    assert start.allocation.visible_devices.count("GPU-") == 4


def test_starving_jobs_go_first_oldest_first() -> None:
    config = replace(SchedulerConfig(), weight_short=1000.0, starvation_s=3600.0, preemption=False)
    long_old = job("long-old", 4, at=0.0, time_limit_s=10**6)
    short_new = job("short-new", 4, at=5000.0, time_limit_s=60)
    # Both ask the whole workstation; the long job has waited 5000 s, past the 3600 s threshold.
    order = started(run((WORKSTATION,), (long_old, short_new), now=5000.0, config=config))
    assert set(order) == {"long-old"} and order["long-old"].explanation["starving"] == 1.0
    plain = started(run((WORKSTATION,), (long_old, short_new), now=5000.0, config=replace(config, starvation_s=0.0)))
    assert set(plain) == {"short-new"}


def test_protected_large_jobs_keep_arrival_order_ahead_of_short_ones() -> None:
    config = replace(SchedulerConfig(), weight_short=1000.0, protect_gpus=4, preemption=False)
    big = job("big", 4, at=0.0, time_limit_s=10**6)
    small = job("small", 4, at=10.0, time_limit_s=60)  # same size, so not protected? it is: 4 ≥ 4
    tiny = job("tiny", 2, at=5.0, time_limit_s=60)
    order = started(run((WORKSTATION,), (small, tiny, big), now=20.0, config=config))
    assert "big" in order  # the oldest protected job is placed first, despite its long limit
    unprotected = started(run((WORKSTATION,), (small, tiny, big), now=20.0, config=replace(config, protect_gpus=0)))
    assert "big" not in unprotected


def test_a_second_reservation_protects_the_second_blocked_job() -> None:
    ws_busy = job("ws-busy", 4, gpu_types=("RTX",), time_limit_s=3600)
    mi_busy = job("mi-busy", 7, gpu_types=("MI250X",), time_limit_s=7200)
    first = started(run((WORKSTATION, MI250X), (ws_busy, mi_busy)))
    running = (Running(ws_busy, first["ws-busy"].allocation, 0.0), Running(mi_busy, first["mi-busy"].allocation, 0.0))
    pending = (
        job("big-rtx", 4, gpu_types=("RTX",), at=1),
        job("big-mi", 8, gpu_types=("MI250X",), at=2),
        job("long-mi", 1, gpu_types=("MI250X",), at=3, time_limit_s=10**5),
    )
    one = run((WORKSTATION, MI250X), pending, running=running, config=replace(BACKFILL, reservations=1))
    assert [d.job_id for d in one if isinstance(d, Reserve)] == ["big-rtx"]
    assert "long-mi" in started(one)  # outside the only reservation
    two = run((WORKSTATION, MI250X), pending, running=running, config=replace(BACKFILL, reservations=2))
    assert [(d.job_id, d.at) for d in two if isinstance(d, Reserve)] == [("big-rtx", 3600.0), ("big-mi", 7200.0)]
    assert "long-mi" not in started(two)  # it would hold a GPU big-mi is promised at t=7200
