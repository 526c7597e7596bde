"""Dependencies and arrays in the daemon: checked at submit, turned into eligibility at each tick,
an array's tasks cancelled, held or released together, and a task's variables.

The decision is ``tuxai.scheduler.eligibility`` (pure); this module reads what it needs from the
store and writes back what it decided (a never-satisfiable dependant ends as cancelled).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tuxai.daemon.engine_queue import engine_queued
from tuxai.errors import JobNotFound, PermissionDenied, UsageError
from tuxai.executor.attempt import AttemptHandle
from tuxai.model.array import ArrayCounts, JobId
from tuxai.model.dependency import AFTER_HINT
from tuxai.model.job import JobRecord, JobSpec, JobState, StopReason
from tuxai.scheduler.eligibility import Gate, Member, Verdict, eligibility
from tuxai.store.arrays import array_tasks, counts, target_rows
from tuxai.store.jobs import Store

_NO_JOB_HINT = "name a job or array that exists (`tuxai ls --all`); " + AFTER_HINT

if TYPE_CHECKING:
    from tuxai.daemon.config import Caller
    from tuxai.daemon.core import Daemon


def check_after(store: Store, spec: JobSpec) -> None:
    """Refuse, at submit, a dependency on no job, or one that can already never be met.

    Another user's job is allowed (the queue is public): the message names only its id and state.

    Raises:
        UsageError: the dependency and why.
    """
    if not spec.after:
        return
    found = target_rows(store, (d.target for d in spec.after))
    for dependency in spec.after:
        if not found[dependency.target]:
            raise UsageError(
                f"--after {dependency.target}: no job {dependency.target}",
                hint=_NO_JOB_HINT,
            )
    verdict = eligibility([Gate(0, spec.after)], _members(found), {})
    if 0 in verdict.never:
        why = verdict.never[0].removeprefix("dependency never satisfied: ")
        raise UsageError(
            f"--after {', '.join(str(d) for d in spec.after)} can never be met: {why}",
            hint="--after JOB:any waits for any end, JOB:fail for a failure",
        )


def check_after_private(daemon: Daemon, spec: JobSpec, caller: Caller) -> None:
    """Under a private queue, another user's job is no job to the caller: ``--after`` it is refused as
    one that does not exist (the same words: whether it exists is not the caller's to learn).

    Raises:
        UsageError: ``--after 12: no job 12``.
    """
    found = target_rows(daemon.store, (d.target for d in spec.after))
    for target, rows in found.items():
        if rows and not daemon.visible(caller, daemon.store.get(rows[0][0])):
            raise UsageError(f"--after {target}: no job {target}", hint=_NO_JOB_HINT)


def gate(store: Store, waiting: Sequence[JobRecord], running: Sequence[JobRecord], now: float) -> Verdict:
    """Which waiting jobs may start now as far as dependencies and array caps go; the jobs whose
    dependency can never be met are cancelled here, with the reason."""
    if not any(j.spec.after or (j.spec.array and j.spec.array.throttle) for j in waiting):
        return Verdict(frozenset(j.id for j in waiting))
    found = target_rows(store, (d.target for j in waiting for d in j.spec.after))
    gates = [
        Gate(
            j.id,
            j.spec.after,
            ready=not j.held and j.eligible_at <= now,
            array_job=j.array_job,
            throttle=j.spec.array.throttle if j.spec.array else None,
        )
        for j in waiting
    ]
    tasks = Counter(j.array_job for j in running if j.array_job is not None)
    verdict = eligibility(gates, _members(found), tasks)
    if verdict.never:
        changes = [(i, JobState.CANCELLED, why, {"ended_at": now}) for i, why in verdict.never.items()]
        store.transitions(changes, now)
    return verdict


def _members(found: dict[JobId, tuple[tuple[int, JobState, str], ...]]) -> dict[JobId, tuple[Member, ...]]:
    return {target: tuple(Member(i, name, state) for i, state, name in rows) for target, rows in found.items()}


def array_environment(job: JobRecord) -> dict[str, str]:
    """A task's variables: ``TUXAI_ARRAY_INDEX``, ``TUXAI_ARRAY_JOB_ID``, ``TUXAI_ARRAY_TASK_COUNT``
    (and the range's first and last index, as Slurm's ``SLURM_ARRAY_TASK_MIN``/``MAX``)."""
    if job.array_job is None or job.array_index is None or job.spec.array is None:
        return {}
    indices = job.spec.array.indices
    return {
        "TUXAI_ARRAY_INDEX": str(job.array_index),
        "TUXAI_ARRAY_JOB_ID": str(job.array_job),
        "TUXAI_ARRAY_TASK_COUNT": str(len(indices)),
        "TUXAI_ARRAY_TASK_MIN": str(indices[0]),
        "TUXAI_ARRAY_TASK_MAX": str(indices[-1]),
    }


def tasks(daemon: Daemon, array_job: int) -> list[JobRecord]:
    """The tasks of an array in index order ([] if it is no array)."""
    return array_tasks(daemon.store, array_job)


def task_counts(daemon: Daemon, array_job: int) -> ArrayCounts | None:
    """An array's indices and how many of its tasks are in each state (None if it is no array)."""
    return counts(daemon.store, array_job)


def own_tasks(daemon: Daemon, array_job: int, caller: Caller, verb: str) -> list[JobRecord]:
    """The tasks of an array the caller may ``verb``.

    Raises:
        JobNotFound: no such array.
        PermissionDenied: another user's.
    """
    tasks = array_tasks(daemon.store, array_job)
    if not tasks:
        raise JobNotFound(array_job)
    if not daemon.visible(caller, tasks[0]):
        raise PermissionDenied(
            f"array {array_job} belongs to {tasks[0].user}: you cannot {verb} it", hint="only its owner or root can"
        )
    return tasks


def cancel_array(daemon: Daemon, array_job: int, caller: Caller, now: float) -> list[JobRecord]:
    """Cancel every task of an array that has not ended: the waiting ones at once, in one durable
    transaction; the running ones are asked to stop (grace period, then SIGKILL). The tasks, after."""
    with daemon._lock:
        tasks = own_tasks(daemon, array_job, caller, "cancel")
        if all(t.state.terminal for t in tasks):
            counts = Counter(t.state.value for t in tasks)
            ended = ", ".join(f"{n} {state}" for state, n in counts.most_common())
            raise UsageError(f"array {array_job} already ended ({ended})", hint="nothing to cancel")
        why = f"cancelled by {caller.user}"
        for task in filter(engine_queued, tasks):  # a cluster engine's queued job is removed first (never starts)
            daemon.executor.stop(AttemptHandle(task.run_dir), StopReason.CANCEL)
        waiting = [(t.id, JobState.CANCELLED, why, {"ended_at": now}) for t in tasks if t.state.waiting]
        daemon.store.transitions(waiting, now, durable=True)
        for task in tasks:
            if task.state is JobState.RUNNING and task.stop_request is not StopReason.CANCEL:
                daemon.store.update(task.id, stop_request=StopReason.CANCEL, reason=f"cancelling (by {caller.user})")
                daemon.executor.stop(AttemptHandle(task.run_dir), StopReason.CANCEL)
        daemon.wake.set()
        return array_tasks(daemon.store, array_job)


def hold_array(daemon: Daemon, array_job: int, caller: Caller, held: bool) -> list[JobRecord]:
    """Hold (or release) every waiting task of an array, in one transaction. The tasks, after.

    Raises:
        UsageError: no task of it is waiting.
    """
    with daemon._lock:
        tasks = own_tasks(daemon, array_job, caller, "hold" if held else "release")
        waiting = [t for t in tasks if t.state.waiting and not engine_queued(t)]  # Slurm's queue: not tuxai's to hold
        if not waiting:
            raise UsageError(
                f"array {array_job} has no pending task to {'hold' if held else 'release'}",
                hint="`tuxai cancel` stops running tasks",
            )
        daemon.store.update_many(
            [(t.id, {"held": held, "reason": "held" if held else "released"}) for t in waiting], durable=True
        )
        daemon.wake.set()
        return array_tasks(daemon.store, array_job)
