"""Every setting docs/scheduler.md documents changes a decision of ``decide`` (none is read and ignored)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import fields, replace

import pytest

from tests.conftest import REPO
from tests.scheduler_helpers import MI250X, WORKSTATION, job, run, started
from tuxai.scheduler import Preempt, Reserve, Running, SchedulerConfig, Start, parse_scheduler_config
from tuxai.scheduler.snapshot import decay_usage

DAY = 86400.0


def _documented() -> str:
    text = (REPO / "docs" / "scheduler.md").read_text()
    found = re.search(r"## Configuration file.*?```yaml\n(.*?)```", text, re.S)
    assert found, "docs/scheduler.md lost its configuration block"
    return found.group(1)


def _outcome(decisions: list[object]) -> list[tuple[object, ...]]:
    """What a decision does, without its explanation (whose weighted terms move with every weight)."""
    out: list[tuple[object, ...]] = []
    for d in decisions:
        if isinstance(d, Start):
            out.append(("start", d.job_id, d.allocation.node, tuple(g.index for g in d.allocation.gpus)))
        elif isinstance(d, Reserve):
            out.append(("reserve", d.job_id, d.at))
        elif isinstance(d, Preempt):
            out.append(("preempt", d.job_id, d.for_job))
        else:
            out.append((type(d).__name__, getattr(d, "job_id", None)))
    return out


def _first_of_two(
    a: object, b: object, now: float = 100.0, **usage: float
) -> Callable[[SchedulerConfig], list[object]]:
    """Two jobs that each want the whole workstation: the order decides who starts."""
    return lambda config: run((WORKSTATION,), (a, b), now=now, config=config, usage=usage)  # type: ignore[arg-type]


def _busy(limit_s: float, **changes: object) -> Running:
    holder = job("busy", 3, time_limit_s=limit_s, **changes)
    allocation = started(run((WORKSTATION,), (holder,)))["busy"].allocation
    return Running(holder, allocation, 0.0)


def _half_life(config: SchedulerConfig) -> list[object]:
    # The daemon decays usage with half_life_s before each decision (daemon.core._usage).
    now = 10 * DAY
    usage = {"heavy": decay_usage(1e6, now, config.half_life_s), "light": decay_usage(2e5, 0.0, config.half_life_s)}
    pending = (job("heavy-1", 4, user="heavy", at=now - 10), job("light-1", 4, user="light", at=now))
    return run((WORKSTATION,), pending, now=now, config=config, usage=usage)


def _backfill(config: SchedulerConfig) -> list[object]:
    pending = (job("head", 2, at=1, priority=50), job("short", 1, at=2, time_limit_s=600))
    return run((WORKSTATION,), pending, running=(_busy(3600),), config=config)


def _reservations(config: SchedulerConfig) -> list[object]:
    # As test_a_second_reservation_protects_the_second_blocked_job: a long job fits outside the first
    # reservation but would hold a GPU the second blocked job is promised.
    ws_busy = job("ws-busy", 4, gpu_types=("RTX",), time_limit_s=3600)
    mi_busy = job("mi-busy", 7, gpu_types=("MI250X",), time_limit_s=7200)
    first = started(run((WORKSTATION, MI250X), (ws_busy, mi_busy)))
    running = (Running(ws_busy, first["ws-busy"].allocation, 0.0), Running(mi_busy, first["mi-busy"].allocation, 0.0))
    pending = (
        job("big-rtx", 4, gpu_types=("RTX",), at=1, priority=60),
        job("big-mi", 8, gpu_types=("MI250X",), at=2, priority=50),
        job("long-mi", 1, gpu_types=("MI250X",), at=3, time_limit_s=10**5),
    )
    return run((WORKSTATION, MI250X), pending, running=running, config=config)


def _preemption(priority: int) -> Callable[[SchedulerConfig], list[object]]:
    def scenario(config: SchedulerConfig) -> list[object]:
        victim = job("low", 4, priority=priority, preemptible=True, time_limit_s=10**6)
        allocation = started(run((WORKSTATION,), (victim,)))["low"].allocation
        return run(
            (WORKSTATION,),
            (job("urgent", 2, priority=50, at=5),),
            running=(Running(victim, allocation, 0.0),),
            config=config,
        )

    return scenario


# Each documented setting: a value other than the default, and a scenario where that value changes what happens.
SCENARIOS: dict[str, tuple[object, Callable[[SchedulerConfig], list[object]]]] = {
    "weight_priority": (0.0, _first_of_two(job("a", 4, at=0), job("b", 4, at=10, priority=60))),
    "weight_fairshare": (
        0.0,
        _first_of_two(job("a", 4, user="heavy", at=0), job("b", 4, user="light", at=10), heavy=1e6, light=0.0),
    ),
    "weight_age": (
        0.0,
        _first_of_two(job("a", 4, at=0, time_limit_s=10 * DAY), job("b", 4, at=DAY, time_limit_s=3600), now=DAY),
    ),
    "weight_size": (0.0, _first_of_two(job("a", 4, at=0), job("b", 2, at=10))),
    "weight_short": (0.0, _first_of_two(job("a", 4, at=0, time_limit_s=10 * DAY), job("b", 4, at=10, time_limit_s=60))),
    "favor_small": (False, _first_of_two(job("a", 2, at=0), job("b", 4, at=10))),
    "half_life_s": (DAY, _half_life),
    "max_age_s": (3600.0, _first_of_two(job("a", 4, at=0), job("b", 4, at=3600, priority=10), now=3600)),
    "default_time_limit_s": (600.0, _first_of_two(job("a", 4, at=0), job("b", 4, at=10, time_limit_s=10 * 3600))),
    "max_time_limit_s": (
        3600.0,
        lambda c: run((WORKSTATION,), (job("head", 2, at=1),), running=(_busy(10 * DAY),), config=c),
    ),
    "backfill": (False, _backfill),
    "reservations": (2, _reservations),
    "starvation_s": (
        3600.0,
        _first_of_two(job("a", 4, at=0, time_limit_s=10 * DAY), job("b", 4, at=5000, time_limit_s=60), now=5000),
    ),
    "protect_gpus": (4, _first_of_two(job("a", 2, at=0, time_limit_s=60), job("b", 4, at=5, time_limit_s=10 * DAY))),
    "preemption": (False, _preemption(priority=0)),
    "preempt_min_priority_gap": (10, _preemption(priority=45)),
}


def test_the_documented_block_is_every_setting_at_its_default() -> None:
    documented = parse_scheduler_config(_documented(), "docs/scheduler.md")
    assert documented == SchedulerConfig()
    keys = set(re.findall(r"^(\w+):", _documented(), re.M))
    assert keys == {f.name for f in fields(SchedulerConfig)} == set(SCENARIOS)


@pytest.mark.parametrize("setting", sorted(SCENARIOS))
def test_every_documented_setting_changes_a_decision(setting: str) -> None:
    value, scenario = SCENARIOS[setting]
    default = SchedulerConfig()
    assert getattr(default, setting) != value
    before = _outcome(scenario(default))
    after = _outcome(scenario(replace(default, **{setting: value})))
    assert before != after, f"{setting}: {getattr(default, setting)} → {value} changed nothing: {before}"


def test_preempt_min_priority_gap_spares_jobs_close_in_priority() -> None:
    # A priority-50 job needs GPUs a preemptible priority-45 job holds: 5 apart.
    scenario = _preemption(priority=45)
    preempted = [d for d in scenario(SchedulerConfig()) if isinstance(d, Preempt)]
    assert [(p.job_id, p.for_job) for p in preempted] == [("low", "urgent")]
    for gap in (5, 6, 50):
        decisions = scenario(replace(SchedulerConfig(), preempt_min_priority_gap=gap))
        assert bool([d for d in decisions if isinstance(d, Preempt)]) == (gap <= 5), gap
