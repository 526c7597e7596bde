"""Quotas in the pure scheduler (``scheduler.quotas``): caps hold jobs with their numbers, and the
config file's ``limits:`` section, whose every error names the file and the field."""

from __future__ import annotations

import pytest

from tests.scheduler_helpers import DGX, job, started
from tuxai.daemon.standing import standings
from tuxai.errors import ConfigError
from tuxai.scheduler import Running, Snapshot, decide
from tuxai.scheduler.decisions import Limited, Reserve
from tuxai.scheduler.priority import queue_order
from tuxai.scheduler.quotas import Caps, Quotas, quotas_from_text

ORIGIN = "/etc/tuxai/config.yaml"


def _decide(
    pending: tuple[object, ...], quotas: Quotas, running: tuple[Running, ...] = (), **use: float
) -> list[object]:
    snapshot = Snapshot((DGX,), 100.0, pending, running, quotas=quotas, quota_use=dict(use))  # type: ignore[arg-type]
    return list(decide(snapshot))


def _limited(decisions: list[object]) -> dict[str, str]:
    return {d.job_id: d.reason for d in decisions if isinstance(d, Limited)}


def test_a_user_at_their_gpu_cap_waits_with_the_numbers_while_another_user_starts() -> None:
    quotas = Quotas(users={"alice": Caps(max_gpus=4)})
    pending = (job("a1", 4, priority=50), job("a2", 1, at=1), job("b1", 2, user="bob", at=2))
    decisions = _decide(pending, quotas)
    assert set(started(decisions)) == {"a1", "b1"}  # room for a2 too (7 whole GPUs), not under her cap
    assert _limited(decisions) == {
        "a2": "user limit: alice holds 4 of 4 GPUs, this job asks 1 (limits.users.alice.max_gpus)"
    }


def test_running_jobs_count_and_the_default_cap_applies_to_users_without_an_entry() -> None:
    quotas = Quotas(default=Caps(max_gpus=2), users={"alice": Caps(max_gpus=5)})
    running = (
        Running(job("r", 2, user="bob"), started(_decide((job("r", 2, user="bob"),), Quotas()))["r"].allocation, 0),
    )
    decisions = _decide((job("b2", 1, user="bob"), job("a", 5)), quotas, running)
    assert set(started(decisions)) == {"a"}
    assert _limited(decisions)["b2"] == "user limit: bob holds 2 of 2 GPUs, this job asks 1 (limits.default.max_gpus)"


def test_a_group_caps_its_members_together() -> None:
    quotas = Quotas(groups={"students": Caps(max_gpus=3)})
    pending = (
        job("a", 2, groups=("students",)),
        job("b", 2, user="bob", groups=("students", "staff"), at=1),
        job("c", 2, user="carol", groups=("staff",), at=2),
    )
    decisions = _decide(pending, quotas)
    assert set(started(decisions)) == {"a", "c"}
    assert _limited(decisions)["b"] == (
        "group limit: group students hold 2 of 3 GPUs, this job asks 2 (limits.groups.students.max_gpus)"
    )


def test_gpu_hours_used_in_the_window_hold_a_job_and_cpu_jobs_pass() -> None:
    quotas = Quotas(users={"alice": Caps(gpu_hours=10)}, window_s=86400)
    decisions = _decide((job("g", 1), job("cpu", 0, at=1)), quotas, alice=10.5 * 3600)
    assert set(started(decisions)) == {"cpu"}
    assert _limited(decisions)["g"] == (
        "user limit: alice used 10.5 of 10 GPU-hours in the last 1d (limits.users.alice.gpu_hours);"
        " it starts as older use leaves the window"
    )
    assert set(started(_decide((job("g", 1),), quotas, alice=9.9 * 3600))) == {"g"}


def test_a_limited_job_neither_reserves_nor_blocks_the_jobs_behind_it() -> None:
    # alice's 5-GPU job would head the queue and reserve; held by her cap, bob's job runs at once.
    first = started(_decide((job("r1", 1), job("r2", 2, user="carol")), Quotas()))
    running = (
        Running(job("r1", 1), first["r1"].allocation, 0),
        Running(job("r2", 2, user="carol"), first["r2"].allocation, 0),
    )
    pending = (job("big", 5, priority=100), job("b", 1, user="bob", at=1))
    assert any(isinstance(d, Reserve) and d.job_id == "big" for d in _decide(pending, Quotas(), running))
    decisions = _decide(pending, Quotas(users={"alice": Caps(max_gpus=5)}), running)
    assert set(started(decisions)) == {"b"} and "holds 1 of 5 GPUs, this job asks 5" in _limited(decisions)["big"]
    assert not any(isinstance(d, Reserve) for d in decisions)


def test_no_limits_change_nothing() -> None:
    pending = tuple(job(f"j{i}", 1, at=i) for i in range(10))
    assert _decide(pending, Quotas()) == _decide(pending, Quotas(default=Caps()))
    assert len(started(_decide(pending, Quotas()))) == 7  # the DGX has 7 whole GPUs (GPU 0 is MIG)


def test_caps_of_resolves_each_field_user_over_default_with_its_path() -> None:
    quotas = Quotas(default=Caps(max_gpus=2, max_time_s=86400), users={"alice": Caps(max_time_s=3600)})
    caps = {(c.name, c.value, c.path) for c in quotas.caps_of("alice")}
    assert caps == {("max_gpus", 2, "limits.default.max_gpus"), ("max_time_s", 3600, "limits.users.alice.max_time")}


def test_limits_section_is_read_with_durations_and_defaults() -> None:
    text = """
limits:
  window: 24h
  default: {max_gpus: 2, gpu_hours: 100, max_time: 2d, max_pending: 20}
  users:
    alice: {max_gpus: 8, max_time: 90m}
  groups:
    students: {max_gpus: 0.5}
"""
    quotas = quotas_from_text(text, ORIGIN)
    assert quotas.window_s == 86400
    assert quotas.default == Caps(max_gpus=2, gpu_hours=100, max_time_s=2 * 86400, max_pending=20)
    assert quotas.users == {"alice": Caps(max_gpus=8, max_time_s=5400)}
    assert quotas.groups == {"students": Caps(max_gpus=0.5)}
    assert quotas_from_text("daemon: {}\n", ORIGIN).empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("limits: {users: {alice: {max_gpus: many}}}", "limits.users.alice.max_gpus must be a number ≥ 0, got 'many'"),
        ("limits: {users: {alice: {max_time: forever}}}", "limits.users.alice.max_time must be a duration"),
        ("limits: {default: {max_gpu: 2}}", "limits.default: unknown setting 'max_gpu'"),
        (
            "limits: {groups: {students: {max_pending: -1}}}",
            "limits.groups.students.max_pending must be an integer ≥ 0",
        ),
        ("limits: {users: {alice: 4}}", "limits.users.alice must be a mapping"),
        ("limits: {window: 0}", "limits.window must be a duration above 0"),
        ("limits: {quota: 1}", "unknown setting 'quota'"),
        ("limits: [1, 2]", "limits must be a mapping"),
    ],
)
def test_config_errors_name_the_file_and_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        quotas_from_text(text, ORIGIN)
    assert caught.value.message.startswith(f"{ORIGIN}: ") and message in caught.value.message, caught.value.message


def test_standings_are_the_ranking_decide_used_with_the_reserved_start() -> None:
    first = started(_decide((job("r", 7, time_limit_s=600),), Quotas()))["r"].allocation
    running = (Running(job("r", 7, time_limit_s=600), first, 50.0),)
    pending = (job("1", 2, priority=10), job("2", 4, priority=50, at=1), job("3", 1, at=2))
    snapshot = Snapshot((DGX,), 100.0, pending, running)
    order = queue_order(snapshot)
    decisions = decide(snapshot, order)
    assert decisions == decide(snapshot)  # the same decision with the order handed in
    kept = standings(order, decisions, 100.0, {}, ())
    assert [job_id for job_id, _ in sorted(kept.items(), key=lambda item: item[1].rank)] == [2, 1, 3]
    for ranked, standing in zip(order, (kept[2], kept[1], kept[3]), strict=True):
        assert standing.total == ranked.score and sum(t.value for t in standing.terms) == pytest.approx(ranked.score)
    (reserve,) = [d for d in decisions if isinstance(d, Reserve)]
    assert reserve.job_id == "2" and kept[2].expected_start == reserve.at == 650.0  # when r's time limit ends
    assert kept[1].expected_start is None
    again = standings([], [], 105.0, kept, [2])  # job 2 started: it keeps how it stood
    assert again == {2: kept[2]}
