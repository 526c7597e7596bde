"""Job arrays and job ids as people write them (Slurm's ``--array`` and ``12_3``).

    parse_array("0-99%8")    → ArraySpec(indices=(0, …, 99), throttle=8)
    parse_array("1,3,5-7")   → indices (1, 3, 5, 6, 7)
    parse_array("0-20:4")    → indices (0, 4, 8, 12, 16, 20)
    parse_job_id("12_3")     → JobId(job=12, task=3): task 3 of array 12
    parse_job_id("12")       → JobId(job=12, task=None)

One submit with ``--array`` makes one job per index; the first one's id is the array's id
(``12``), and each task is also called ``12_<index>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tuxai.errors import UsageError

MAX_ARRAY_TASKS = 10_000  # one submit; Slurm's default MaxArraySize is 1001
MAX_ARRAY_INDEX = 1_000_000
ARRAY_HINT = "ranges such as 0-99, 1,3,5-7 or 0-20:4, with %N to run at most N tasks at once: 0-99%8"
ID_HINT = "a job id such as 12, or 12_3 for task 3 of array 12"
# ASCII digits, at most 18 (below SQLite's 2**63): a longer number is no index, throttle or id (security R1, R2)
_RANGE = re.compile(r"^(\d{1,18})(?:-(\d{1,18})(?::(\d{1,18}))?)?$", re.ASCII)
_THROTTLE = re.compile(r"^\d{1,18}$", re.ASCII)
_JOB_ID = re.compile(r"^(\d{1,18})(?:_(\d{1,7}))?$", re.ASCII)  # a task: MAX_ARRAY_INDEX


@dataclass(frozen=True)
class ArraySpec:
    """The tasks of an array: their indices (ascending, distinct) and how many may run at once."""

    indices: tuple[int, ...]
    throttle: int | None = None  # %N: at most N tasks running at once (None: no cap)

    @property
    def text(self) -> str:
        """The canonical form, which ``parse_array`` reads back: ``0-99%8``, ``1,3,5-7``."""
        parts: list[str] = []
        indices, i = self.indices, 0
        while i < len(indices):
            j = i + 1
            step = indices[j] - indices[i] if j < len(indices) else 1
            while j + 1 < len(indices) and indices[j + 1] - indices[j] == step:
                j += 1
            if j < len(indices) and (step == 1 or j - i >= 2):  # a run: A-B, or A-B:STEP of three or more
                parts.append(f"{indices[i]}-{indices[j]}" + (f":{step}" if step > 1 else ""))
                i = j + 1
            else:
                parts.append(str(indices[i]))
                i += 1
        return ",".join(parts) + (f"%{self.throttle}" if self.throttle else "")


def parse_array(text: str, where: str = "--array") -> ArraySpec:
    """``"0-99%8"`` → ``ArraySpec`` (see the module's examples).

    Raises:
        UsageError: naming ``where`` (the flag or the job file's field), the text and what is wrong.
    """

    def bad(why: str) -> UsageError:
        return UsageError(f"{where} {text!r}: {why}", hint=ARRAY_HINT)

    ranges, percent, throttle_text = str(text).strip().partition("%")
    throttle = None
    if percent:
        if not _THROTTLE.match(throttle_text) or int(throttle_text) < 1:
            raise bad("the part after % must be a number of tasks, at least 1")
        throttle = int(throttle_text)
    indices: set[int] = set()
    for part in ranges.split(","):
        match = _RANGE.match(part.strip())
        if match is None:
            raise bad(f"{part.strip() or 'an empty part'!r} is not an index, a range A-B or A-B:STEP")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3)) if match.group(3) is not None else 1
        if last < first:
            raise bad(f"the range {part.strip()} ends before it starts")
        if step < 1:
            raise bad(f"the step of {part.strip()} must be at least 1")
        if last > MAX_ARRAY_INDEX:
            raise bad(f"indices go up to {MAX_ARRAY_INDEX}")
        if len(indices) + (last - first) // step + 1 > MAX_ARRAY_TASKS:
            raise bad(f"at most {MAX_ARRAY_TASKS} tasks in one array")
        indices.update(range(first, last + 1, step))
    return ArraySpec(tuple(sorted(indices)), throttle)


@dataclass(frozen=True)
class JobId:
    """A job as named on the command line: ``12`` (a job, or a whole array) or ``12_3`` (one task)."""

    job: int
    task: int | None = None

    def __str__(self) -> str:
        return str(self.job) if self.task is None else f"{self.job}_{self.task}"


def parse_job_id(text: str, where: str = "job id") -> JobId:
    """``"12_3"`` → ``JobId(12, 3)``, ``"12"`` → ``JobId(12)``.

    Raises:
        UsageError: not an id of that form, naming ``where``.
    """
    match = _JOB_ID.match(str(text).strip())
    if match is None or int(match.group(1)) < 1:
        raise UsageError(f"{where} {text!r} is not a job id", hint=ID_HINT)
    task = match.group(2)
    return JobId(int(match.group(1)), None if task is None else int(task))


def task_name(array_job: int | None, array_index: int | None, job_id: int) -> str:
    """How a job is called: ``12_3`` for task 3 of array 12, else its id."""
    return str(job_id) if array_job is None or array_index is None else f"{array_job}_{array_index}"


def array_from(value: object, where: str = "array") -> ArraySpec | None:
    """A job file's ``array`` (``0-99%8``, or a bare count-free index such as ``5``) → ``ArraySpec``.

    Raises:
        UsageError: naming ``where``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UsageError(f"{where} must be ranges such as 0-99%8, got {value!r}", hint=ARRAY_HINT)
    return parse_array(str(value), where)


@dataclass(frozen=True)
class ArrayCounts:
    """An array at a glance (``GET /v1/arrays/{id}/counts``): its indices and how many tasks are in each state."""

    id: int
    indices: str  # ArraySpec.text without the cap: 0-99, 1,3,5-7
    counts: Mapping[str, int]  # state → tasks


def array_counts(array_job: int, tasks: Iterable[tuple[int, str]]) -> ArrayCounts:
    """``ArrayCounts`` of (index, state) pairs: ``[(0, "running"), (1, "pending")]`` → 0-1, 1 running, 1 pending."""
    tasks = list(tasks)
    counts: dict[str, int] = {}
    for _, state in tasks:
        counts[state] = counts.get(state, 0) + 1
    return ArrayCounts(array_job, ArraySpec(tuple(sorted({i for i, _ in tasks}))).text, counts)
