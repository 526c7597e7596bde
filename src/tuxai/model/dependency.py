"""Job dependencies (Slurm's ``--dependency``): start a job only after others end.

    parse_dependency("12")       → Dependency(JobId(12), After.OK)     afterok:12
    parse_dependency("12:any")   → Dependency(JobId(12), After.ANY)    afterany:12
    parse_dependency("12_3:fail")→ Dependency(JobId(12, 3), After.FAIL) afternotok:12_3

A dependency on an array (``12``) waits for all its tasks; on a task (``12_3``) for that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tuxai.errors import UsageError
from tuxai.model.array import JobId, parse_job_id

MAX_DEPENDENCIES = 1000  # one job's distinct targets (an array counts once: --after 12 waits for all its tasks)
AFTER_HINT = "JOB[:ok|:any|:fail], e.g. --after 12 (ends ok), --after 12:any, --after 12_3:fail"


class After(StrEnum):
    """How the job depended on must end: ``ok`` (succeeded), ``any`` (whatever), ``fail`` (anything but ok)."""

    OK = "ok"
    ANY = "any"
    FAIL = "fail"


_SLURM = {"afterok": After.OK, "afterany": After.ANY, "afternotok": After.FAIL, "notok": After.FAIL}


@dataclass(frozen=True)
class Dependency:
    """Wait for ``target`` (a job, an array or one task) to end as ``kind`` says."""

    target: JobId
    kind: After = After.OK

    def __str__(self) -> str:
        return f"{self.target}:{self.kind.value}"


def parse_dependency(text: str, where: str = "--after") -> Dependency:
    """``"12:any"`` → ``Dependency(JobId(12), After.ANY)`` (see the module's examples).

    Raises:
        UsageError: naming ``where``, the text and the forms it takes.
    """
    job, _, kind = str(text).strip().partition(":")
    kind = kind.strip().lower()
    try:
        after = _SLURM.get(kind) or After(kind or "ok")
        target = parse_job_id(job, where)
    except (ValueError, UsageError):
        raise UsageError(f"{where} {text!r} is not a dependency", hint=AFTER_HINT) from None
    return Dependency(target, after)


def dependencies_from(value: object, where: str = "after") -> tuple[Dependency, ...]:
    """A job file's ``after``: one dependency (``12:any``), a comma-separated line, or a list of them.

    Raises:
        UsageError: naming ``where`` and the part that is not a dependency.
    """
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, bool) or not isinstance(value, str | int | list):
        raise UsageError(f"{where} must be a job id or a list of them, got {value!r}", hint=AFTER_HINT)
    items = value if isinstance(value, list) else str(value).split(",")
    found: dict[Dependency, None] = {}  # in order, each once (a list's `in` made 5,000 of them a minute: R3)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise UsageError(f"{where}: {item!r} is not a dependency", hint=AFTER_HINT)
        for part in str(item).split(","):
            found[parse_dependency(part, where)] = None
            if len(found) > MAX_DEPENDENCIES:
                raise UsageError(
                    f"{where}: at most {MAX_DEPENDENCIES} dependencies in one job",
                    hint="wait for a whole array with --after ARRAY_ID, or chain jobs",
                )
    return tuple(found)
