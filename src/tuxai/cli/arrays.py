"""Arrays and dependencies on the command line: ``submit --after/--array`` checked by flag, ``12_3``
resolved to its job, an array folded into one ``ls`` line with its counts, and the array verbs.

    ID          STATE     REASON
    12_[0-99]   running   8 running, 80 pending, 12 done; array 12 runs at most 8 tasks at once (%8)

``tuxai ls --expand`` (or ``tuxai ls 12``) shows one line per task: ``12_0``, ``12_1`` …
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from tuxai.api.client import Client
from tuxai.cli.states import state_words
from tuxai.errors import JobNotFound, UsageError
from tuxai.model.array import ArrayCounts, ArraySpec, JobId, parse_array, parse_job_id, task_name
from tuxai.model.dependency import parse_dependency
from tuxai.model.job import JobState
from tuxai.model.wire import Job, PublicJob

_ORDER = (JobState.RUNNING, JobState.PENDING, JobState.REQUEUED)  # the line's state: the first one a task is in


@dataclass(frozen=True, kw_only=True)
class ArrayLine(PublicJob):
    """An array as one line of ``ls``: its first task's fields, the tasks' counts in ``reason``."""

    indices: str  # 0-99, 1,3,5-7
    tasks: int


def submit_flags(after: list[str] | None, array: str | None) -> dict[str, object]:
    """``--after`` and ``--array`` as job file fields, each checked here so that an error names its flag.

    Raises:
        UsageError: ``--after '12x' is not a dependency``, ``--array '5-1': the range 5-1 ends before it starts``.
    """
    flags: dict[str, object] = {}
    if after:
        flags["after"] = [str(parse_dependency(part, "--after")) for item in after for part in item.split(",")]
    if array is not None:
        flags["array"] = parse_array(array, "--array").text
    return flags


def submitted(job_id: int, array: ArraySpec | None) -> str:
    """The line ``submit`` prints: ``submitted job 12``, ``submitted array 12: 100 tasks, 12_0 to 12_99``."""
    if array is None:
        return f"submitted job {job_id}"
    first, last = array.indices[0], array.indices[-1]
    cap = f", at most {array.throttle} at once" if array.throttle else ""
    return f"submitted array {job_id}: {len(array.indices)} tasks, {job_id}_{first} to {job_id}_{last}{cap}"


def job_label(job: PublicJob) -> str:
    """The ID column: ``12``, ``12_3`` for a task, ``12_[0-99]`` for a folded array."""
    if isinstance(job, ArrayLine):
        return f"{job.id}_[{job.indices}]"
    return task_name(job.array_job, job.array_index, job.id)


def fold(jobs: list[PublicJob], expand: bool, api: Client) -> list[PublicJob]:
    """The jobs, each array's tasks folded into one ``ArrayLine`` (where its first listed task was) that
    counts all its tasks, the ended ones too (``api.array_counts``); ``expand``: the jobs as they are."""
    if expand:
        return jobs
    tasks: dict[int, list[PublicJob]] = {}
    for job in jobs:
        if job.array_job is not None:
            tasks.setdefault(job.array_job, []).append(job)
    counts = {array_job: api.array_counts(array_job) for array_job in tasks}
    lines: list[PublicJob] = []
    for job in jobs:
        if job.array_job is None or sum(counts[job.array_job].counts.values()) <= 1:
            lines.append(job)
        elif job is tasks[job.array_job][0]:
            lines.append(_line(tasks[job.array_job], counts[job.array_job]))
    return lines


def _line(tasks: list[PublicJob], counts: ArrayCounts) -> ArrayLine:
    """One line for an array: the fields of its first task listed, the state its tasks are in, the counts."""
    said = Counter({("done" if state == JobState.SUCCEEDED.value else state): n for state, n in counts.counts.items()})
    words = ", ".join(f"{n} {state}" for state, n in sorted(said.items(), key=lambda item: _rank(item[0])))
    state = next((s for s in _ORDER if counts.counts.get(s.value)), tasks[-1].state)
    waiting = next((t for t in tasks if t.state.waiting and t.reason), None)
    running = [t for t in tasks if t.state is JobState.RUNNING]
    fields = {f.name: getattr(tasks[0], f.name) for f in dataclasses.fields(PublicJob)}
    fields.update(
        id=counts.id,
        state=state,
        reason=words + (f"; {waiting.reason}" if waiting else ""),
        exit_code=None,
        signal=None,
        gpus=tuple(g for t in running for g in t.gpus),
        gpu_indices=tuple(i for t in running for i in t.gpu_indices),
        cpus=tuple(c for t in running for c in t.cpus),
        waited_s=max(t.waited_s for t in tasks),
        ran_s=max((t.ran_s for t in running if t.ran_s is not None), default=None),
        flags=tuple(sorted({f for t in tasks for f in t.flags})),
    )
    return ArrayLine(**fields, indices=counts.indices, tasks=sum(counts.counts.values()))


def _rank(state: str) -> int:
    order = ["running", "pending", "requeued", "done"]
    return order.index(state) if state in order else len(order)


def only(jobs: list[PublicJob], wanted: str) -> list[PublicJob]:
    """``ls 12``: job 12, or every task of array 12; ``ls 12_3``: that task.

    Raises:
        UsageError: not a job id.
    """
    ref = parse_job_id(wanted)
    if ref.task is not None:
        return [j for j in jobs if j.array_job == ref.job and j.array_index == ref.task]
    return [j for j in jobs if j.array_job == ref.job or j.id == ref.job]


def resolve(api: Client, text: str) -> tuple[int, bool]:
    """A job id as typed → (the job's id, whether it names a whole array): ``12_3`` → (15, False).

    Raises:
        UsageError: not a job id.
        JobNotFound: no such task.
    """
    ref = parse_job_id(text)
    if ref.task is None:
        job = api.job(ref.job)
        return ref.job, job.array_job == ref.job
    return task_id(api, ref), False


def task_id(api: Client, ref: JobId) -> int:
    """The job id of task ``ref`` (``12_3``). Raises ``JobNotFound``: no such array or task."""
    for task in api.array(ref.job):
        if task.array_index == ref.task:
            return task.id
    raise JobNotFound(str(ref))


def act(api: Client, verb: str, text: str) -> str:
    """``cancel``, ``hold`` or ``release`` the job, task or array ``text`` names; the line to print."""
    job_id, whole = resolve(api, text)
    if whole:
        tasks = api.array_action(job_id, verb)
        counts = Counter(_said(t) for t in tasks)
        return f"array {job_id}: " + ", ".join(f"{n} {state}" for state, n in counts.most_common())
    job: Job = {"cancel": api.cancel, "hold": api.hold, "release": api.release}[verb](job_id)
    return f"job {text}: {state_words(job.state, job.reason)}"


def _said(task: Job) -> str:
    if task.state is JobState.RUNNING and task.reason.startswith("cancelling"):
        return "cancelling"
    return ("held " if task.held and task.state.waiting else "") + task.state.value


def one_job(api: Client, text: str, verb: str) -> int:
    """The job id of one job or task (``show``, ``logs``), not of a whole array.

    Raises:
        UsageError: ``text`` names a whole array (the hint names a task).
    """
    job_id, whole = resolve(api, text)
    if whole and verb == "logs":
        tasks = api.array(job_id)
        first = task_name(job_id, tasks[0].array_index, job_id)
        raise UsageError(
            f"job {job_id} is an array of {len(tasks)} tasks, each with its own log",
            hint=f"name one task: tuxai logs {first}",
        )
    return job_id


def show_array(api: Client, array_job: int, as_json: bool) -> int:
    """``tuxai show 12`` of an array: one line with its counts, then one per task (``--json``: the tasks)."""
    import json

    from tuxai.cli.jobs import printable
    from tuxai.model.wire import to_json

    tasks = api.array(array_job)
    if as_json:
        print(json.dumps(to_json(tasks), indent=2, sort_keys=True))
        return 0
    line = _line(tasks, api.array_counts(array_job))
    print(printable(f"array {job_label(line)} {line.name} ({line.user}): {line.tasks} tasks, {line.reason}"))
    for task in tasks:
        why = f"  {task.reason}" if task.reason else ""
        print(printable(f"  {job_label(task):<12} {task.state.value:<10}{why}"))
    return 0
