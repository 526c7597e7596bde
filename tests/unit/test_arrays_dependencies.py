"""Arrays and dependencies, the pure parts: ``--array`` ranges, ``--after`` forms, job ids such as
``12_3``, and the eligibility the scheduler's snapshot gets (``tuxai.scheduler.eligibility``)."""

from __future__ import annotations

import pytest

from tuxai.errors import UsageError
from tuxai.model.array import ArraySpec, JobId, parse_array, parse_job_id
from tuxai.model.dependency import After, Dependency, parse_dependency
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict, spec_to_dict
from tuxai.scheduler.eligibility import Gate, Member, eligibility


@pytest.mark.parametrize(
    ("text", "indices", "throttle"),
    [
        ("0-9", tuple(range(10)), None),
        ("0-99%8", tuple(range(100)), 8),
        ("1,3,5-7", (1, 3, 5, 6, 7), None),
        ("0-20:4", (0, 4, 8, 12, 16, 20), None),
        ("7", (7,), None),
        ("5-7,1,6", (1, 5, 6, 7), None),
        ("0-3%2", (0, 1, 2, 3), 2),
    ],
)
def test_array_ranges_steps_and_the_cap(text: str, indices: tuple[int, ...], throttle: int | None) -> None:
    spec = parse_array(text)
    assert spec == ArraySpec(indices, throttle)
    assert parse_array(spec.text) == spec  # the canonical form reads back


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "is not an index"),
        ("a-b", "is not an index"),
        ("5-1", "ends before it starts"),
        ("0-10:0", "step"),
        ("0-9%0", "after %"),
        ("0-9%x", "after %"),
        ("1,,2", "empty part"),
        ("0-20000", "at most 10000 tasks"),
        ("2000000", "indices go up to"),
        ("-1", "is not an index"),
    ],
)
def test_array_bad_input_is_one_error_naming_the_flag(text: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_array(text)
    assert caught.value.message.startswith(f"--array {text!r}") and why in caught.value.message
    assert "0-99%8" in caught.value.hint


def test_dependency_forms() -> None:
    assert parse_dependency("12") == Dependency(JobId(12), After.OK)
    assert parse_dependency("12:any") == Dependency(JobId(12), After.ANY)
    assert parse_dependency("12_3:fail") == Dependency(JobId(12, 3), After.FAIL)
    assert parse_dependency("12:afternotok").kind is After.FAIL  # Slurm's word works too
    assert str(parse_dependency("12_3")) == "12_3:ok"
    for bad in ("", "x", "12:maybe", "0", "12_", "12_3_4", "-3"):
        with pytest.raises(UsageError) as caught:
            parse_dependency(bad)
        assert caught.value.message == f"--after {bad!r} is not a dependency"


def test_job_ids() -> None:
    assert parse_job_id("12") == JobId(12) and parse_job_id("12_3") == JobId(12, 3)
    assert str(JobId(12, 3)) == "12_3"
    with pytest.raises(UsageError, match="is not a job id"):
        parse_job_id("12-3")


def test_job_file_fields_round_trip() -> None:
    spec = spec_from_dict({"command": "true", "after": ["12", "13_2:any"], "array": "0-20:4%2"})
    assert spec.after == (Dependency(JobId(12)), Dependency(JobId(13, 2), After.ANY))
    assert spec.array == ArraySpec((0, 4, 8, 12, 16, 20), 2)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert spec_from_dict({"command": "true", "after": "12, 14:fail"}).after[1] == Dependency(JobId(14), After.FAIL)
    with pytest.raises(UsageError, match=r"job\.yaml: array '1-x'"):
        spec_from_dict({"command": "true", "array": "1-x"}, origin="job.yaml")


# ---- eligibility --------------------------------------------------------------------------------

A, B, C = JobId(1), JobId(2), JobId(3)


def _one(job_id: int, state: JobState) -> tuple[Member, ...]:
    return (Member(job_id, str(job_id), state),)


@pytest.mark.parametrize(
    ("kind", "state", "outcome"),
    [
        (After.OK, JobState.RUNNING, "waits"),
        (After.OK, JobState.SUCCEEDED, "eligible"),
        (After.OK, JobState.FAILED, "never"),
        (After.OK, JobState.CANCELLED, "never"),
        (After.OK, JobState.REQUEUED, "waits"),
        (After.ANY, JobState.FAILED, "eligible"),
        (After.ANY, JobState.PENDING, "waits"),
        (After.FAIL, JobState.TIMEOUT, "eligible"),
        (After.FAIL, JobState.SUCCEEDED, "never"),
        (After.FAIL, JobState.RUNNING, "waits"),
    ],
)
def test_dependency_kinds(kind: After, state: JobState, outcome: str) -> None:
    verdict = eligibility([Gate(9, (Dependency(A, kind),))], {A: _one(1, state)}, {})
    got = "eligible" if 9 in verdict.eligible else "never" if 9 in verdict.never else "waits"
    assert got == outcome
    if outcome == "waits":
        assert verdict.waits[9].startswith("waits for job 1 to ") and f"({state.value})" in verdict.waits[9]


def test_reason_in_words_and_never_reason() -> None:
    verdict = eligibility([Gate(9, (Dependency(A),))], {A: _one(1, JobState.RUNNING)}, {})
    assert verdict.waits == {9: "waits for job 1 to end ok (running)"}
    verdict = eligibility([Gate(9, (Dependency(A),))], {A: _one(1, JobState.FAILED)}, {})
    assert verdict.never == {9: "dependency never satisfied: job 1 failed"} and not verdict.eligible


def test_a_chain_falls_in_one_pass() -> None:
    # 1 failed; 2 waits for 1 ok, 3 for 2 ok, 4 for 3 with any end (so it runs once 3 is cancelled).
    waiting = [Gate(2, (Dependency(A),)), Gate(3, (Dependency(B),)), Gate(4, (Dependency(C, After.ANY),))]
    members = {
        A: _one(1, JobState.FAILED),
        B: _one(2, JobState.PENDING),
        C: _one(3, JobState.PENDING),
    }
    verdict = eligibility(waiting, members, {})
    assert verdict.never == {
        2: "dependency never satisfied: job 1 failed",
        3: "dependency never satisfied: job 2 was cancelled",
    }
    assert verdict.eligible == {4}


def test_an_array_target_waits_for_every_task() -> None:
    tasks = (
        Member(10, "10_0", JobState.SUCCEEDED),
        Member(11, "10_1", JobState.RUNNING),
        Member(12, "10_2", JobState.PENDING),
    )
    target = JobId(10)
    verdict = eligibility([Gate(20, (Dependency(target),))], {target: tasks}, {})
    assert verdict.waits[20] == "waits for array 10 to end ok (1 succeeded, 1 running, 1 pending)"
    failed = (*tasks[:2], Member(12, "10_2", JobState.FAILED))
    verdict = eligibility([Gate(20, (Dependency(target),))], {target: failed}, {})
    assert verdict.never[20] == "dependency never satisfied: array 10: task 10_2 failed"
    ended = tuple(Member(m.id, m.name, JobState.SUCCEEDED) for m in tasks)
    assert 20 in eligibility([Gate(20, (Dependency(target),))], {target: ended}, {}).eligible


def test_a_forgotten_target_is_met_as_in_slurm() -> None:
    assert 9 in eligibility([Gate(9, (Dependency(A),))], {A: ()}, {}).eligible


def test_array_cap_lets_the_lowest_ready_tasks_in() -> None:
    gates = [Gate(i, array_job=1, throttle=3) for i in range(1, 7)]
    gates[1] = Gate(2, ready=False, array_job=1, throttle=3)  # held: neither counted nor eligible
    verdict = eligibility(gates, {}, {1: 1})  # one task runs already: two more may go
    assert verdict.eligible == {1, 3}
    assert verdict.waits[4] == "array 1 runs at most 3 tasks at once (%3)"
    assert 2 not in verdict.waits  # held: the daemon says so
    assert eligibility(gates, {}, {1: 3}).eligible == frozenset()
