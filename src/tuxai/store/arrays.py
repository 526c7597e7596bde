"""The store's reads for arrays and dependencies: an array's tasks, and what ``--after`` targets name.

A task is a row of ``jobs`` with ``array_job`` (its array's id, the first task's) and
``array_index``; ``Store.submit`` inserts an array's tasks in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tuxai.model.array import ArrayCounts, JobId, array_counts
from tuxai.model.job import JobRecord, JobState
from tuxai.store.jobs import Store, _record

Row = tuple[int, JobState, str]  # id, state, name ("12" or "12_3")
_CHUNK = 10_000  # ids a query: two variables each, far below SQLite's limit (250,000 here, 32,766 elsewhere)


def array_tasks(store: Store, array_job: int, states: Iterable[JobState] | None = None) -> list[JobRecord]:
    """The tasks of array ``array_job`` in index order (optionally only in ``states``); [] if it is no array."""
    wanted = [s.value for s in states] if states is not None else None
    where = f" AND state IN ({','.join('?' * len(wanted))})" if wanted is not None else ""
    with store.db.read() as db:
        rows = db.execute(
            f"SELECT * FROM jobs WHERE array_job=?{where} ORDER BY array_index", (array_job, *(wanted or []))
        ).fetchall()
    return [_record(row, store._specs) for row in rows]


def counts(store: Store, array_job: int) -> ArrayCounts | None:
    """How many tasks of array ``array_job`` are in each state, and its indices; None if it is no array."""
    with store.db.read() as db:
        rows = db.execute("SELECT array_index, state FROM jobs WHERE array_job=?", (array_job,)).fetchall()
    return array_counts(array_job, ((int(i), str(s)) for i, s in rows)) if rows else None


def target_rows(store: Store, targets: Iterable[JobId]) -> dict[JobId, tuple[Row, ...]]:
    """What each target names: ``12`` an array's every task (or job 12 itself), ``12_3`` one task.

    A target that names nothing maps to ``()`` (never submitted, or forgotten after its retention).
    """
    targets = set(targets)
    if not targets:
        return {}
    jobs = sorted({t.job for t in targets})
    by_row: dict[int, Any] = {}  # id → (id, state, array_job, array_index)
    with store.db.read() as db:  # in chunks: one IN list of every waiting job's targets passed SQLite's limit (R6)
        for start in range(0, len(jobs), _CHUNK):
            chunk = jobs[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(
                f"SELECT id, state, array_job, array_index FROM jobs WHERE id IN ({marks}) OR array_job IN ({marks})",
                (*chunk, *chunk),
            ):
                by_row[int(row[0])] = row
    rows = [by_row[i] for i in sorted(by_row)]
    tasks: dict[int, list[Row]] = {}
    by_id: dict[int, Row] = {}
    by_task: dict[tuple[int, int], Row] = {}
    for job_id, state, array_job, array_index in rows:
        name = str(job_id) if array_job is None else f"{array_job}_{array_index}"
        row = (int(job_id), JobState(state), name)
        by_id[row[0]] = row
        if array_job is not None:
            tasks.setdefault(int(array_job), []).append(row)
            by_task[(int(array_job), int(array_index))] = row
    found: dict[JobId, tuple[Row, ...]] = {}
    for target in targets:
        if target.task is not None:
            task = by_task.get((target.job, target.task))
            found[target] = (task,) if task else ()
        elif target.job in tasks:
            found[target] = tuple(tasks[target.job])
        else:
            found[target] = (by_id[target.job],) if target.job in by_id else ()
    return found
