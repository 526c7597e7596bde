"""Which waiting jobs ``decide`` may consider: dependencies met, arrays under their ``%N`` cap (pure).

    eligibility(waiting, members, running_tasks) → Verdict(eligible, waits, never)

A dependency (``tuxai.model.dependency``) on a job, an array (all its tasks) or one task is:

    ok    met when every member succeeded; never once one ended otherwise
    any   met when every member ended
    fail  met when every member ended and one did not succeed; never when all succeeded

A job whose dependency can never be met is ``never`` (the daemon cancels it with the reason,
as Slurm's ``kill_invalid_depend``), and counts as cancelled for the jobs that depend on it, so
a chain falls in one pass. A dependency on a job no longer in the store (forgotten after its
retention) is met, as in Slurm. The reasons name jobs by id and state only: the queue is public,
a job's other fields are its owner's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tuxai.model.array import JobId
from tuxai.model.dependency import After, Dependency
from tuxai.model.job import JobState

_ENDED = {
    JobState.SUCCEEDED: "succeeded",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "was cancelled",
    JobState.TIMEOUT: "timed out",
    JobState.PREEMPTED: "was preempted",
}
_TO_END = {After.OK: "to end ok", After.ANY: "to end", After.FAIL: "to fail"}


@dataclass(frozen=True)
class Member:
    """A job a dependency names (an array names all its tasks): its id, how it is called, its state."""

    id: int
    name: str  # "12", or "12_3" for a task
    state: JobState


@dataclass(frozen=True)
class Gate:
    """A waiting job as eligibility reads it. ``ready``: neither held nor in a retry's backoff."""

    id: int
    after: tuple[Dependency, ...] = ()
    ready: bool = True
    array_job: int | None = None
    throttle: int | None = None  # its array's %N


@dataclass(frozen=True)
class Verdict:
    """``eligible``: may be given to ``decide``; ``waits``: why not yet; ``never``: why never (cancel it)."""

    eligible: frozenset[int]
    waits: dict[int, str] = field(default_factory=dict)
    never: dict[int, str] = field(default_factory=dict)


def eligibility(
    waiting: Sequence[Gate], members: Mapping[JobId, tuple[Member, ...]], running_tasks: Mapping[int, int]
) -> Verdict:
    """Dependencies, then array caps, for every waiting job (see the module's table).

    ``members``: what each dependency's target names (none: forgotten); ``running_tasks``: how
    many tasks of each array run now. A capped array's lowest ready tasks are the eligible ones.
    """
    ended: dict[int, JobState] = {}  # jobs found never satisfiable in this pass: cancelled
    waits: dict[int, str] = {}
    never: dict[int, str] = {}
    changed = True
    while changed:  # a job cancelled here may make its own dependants impossible
        changed = False
        for gate in waiting:
            if gate.id in never or not gate.after:
                continue
            impossible, unmet = _check(gate.after, members, ended)
            if impossible:
                never[gate.id] = f"dependency never satisfied: {impossible}"
                ended[gate.id] = JobState.CANCELLED
                waits.pop(gate.id, None)
                changed = True
            elif unmet:
                waits[gate.id] = "waits for " + " and ".join(unmet)
    eligible: set[int] = set()
    room: dict[int, int] = {}
    for gate in waiting:
        if gate.id in never or gate.id in waits or not gate.ready:
            continue
        if gate.array_job is not None and gate.throttle:
            free = room.setdefault(gate.array_job, gate.throttle - running_tasks.get(gate.array_job, 0))
            if free <= 0:
                waits[gate.id] = f"array {gate.array_job} runs at most {gate.throttle} tasks at once (%{gate.throttle})"
                continue
            room[gate.array_job] = free - 1
        eligible.add(gate.id)
    return Verdict(frozenset(eligible), waits, never)


def _check(
    after: tuple[Dependency, ...], members: Mapping[JobId, tuple[Member, ...]], ended: Mapping[int, JobState]
) -> tuple[str, list[str]]:
    """(why it can never be met, else ""; the dependencies not met yet, in words)."""
    unmet = []
    for dependency in after:
        found = [(m, ended.get(m.id, m.state)) for m in members.get(dependency.target, ())]
        states = [state for _, state in found]
        done = all(s.terminal for s in states)
        failed = [(m, s) for m, s in found if s.terminal and s is not JobState.SUCCEEDED]
        if dependency.kind is After.OK and failed:
            member, state = failed[0]
            return f"{_who(member, dependency.target)} {_ENDED[state]}", []
        if dependency.kind is After.FAIL and done and states and not failed:
            return f"{_label(dependency.target, found)} succeeded", []
        met = done and (dependency.kind is not After.FAIL or bool(failed) or not states)
        if not met:
            unmet.append(f"{_label(dependency.target, found)} {_TO_END[dependency.kind]} ({_counts(states)})")
    return "", unmet


def _label(target: JobId, found: list[tuple[Member, JobState]]) -> str:
    is_array = target.task is None and any("_" in m.name for m, _ in found)
    return f"array {target.job}" if is_array else f"job {target}"


def _who(member: Member, target: JobId) -> str:
    return f"job {member.name}" if member.name == str(target) else f"array {target.job}: task {member.name}"


def _counts(states: list[JobState]) -> str:
    if len(states) == 1:
        return states[0].value
    counts = Counter(s.value for s in states)
    return ", ".join(f"{n} {state}" for state, n in counts.most_common())
