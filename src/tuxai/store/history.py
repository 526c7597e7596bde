"""The dashboard's read-only history query: one page of jobs, newest first, from the indexes.

``page`` walks the primary key backwards from ``before`` (keyset paging: the cost of page N is the
cost of page 1) down to ``after`` with the ``state`` and ``user`` filters, and stops after ``limit``
rows; no query here reads every job or every telemetry sample. A time filter becomes an id range:
ids are handed out in submission order, so ``first_submitted`` finds the boundary by a binary search
on the primary key (about 17 point reads for 100,000 jobs).
"""

from __future__ import annotations

from collections.abc import Sequence

from tuxai.model.job import JobRecord, JobState
from tuxai.store.jobs import Store, _record

MAX_PAGE = 200


def page(
    store: Store,
    states: Sequence[JobState] = (),
    user: str = "",
    before: int | None = None,
    limit: int = 50,
    after: int | None = None,
) -> list[JobRecord]:
    """Up to ``limit`` jobs with ids below ``before`` (None: the newest) and from ``after`` on, in
    ``states`` and of ``user`` when given, newest first."""
    clauses: list[str] = []
    params: list[object] = []
    if states:
        clauses.append(f"state IN ({','.join('?' * len(states))})")
        params.extend(state.value for state in states)
    if user:
        clauses.append("user=?")
        params.append(user)
    if before is not None:
        clauses.append("id<?")
        params.append(before)
    if after is not None:
        clauses.append("id>=?")
        params.append(after)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(max(1, min(limit, MAX_PAGE)))
    with store.db.read() as db:
        rows = db.execute(f"SELECT * FROM jobs{where} ORDER BY id DESC LIMIT ?", params).fetchall()
    return [_record(row, store._specs) for row in rows]


def first_submitted(store: Store, at: float) -> int:
    """An id boundary for a time: every job submitted before ``at`` has a smaller id, every other one an id
    at least this (past the newest id when none was submitted from ``at`` on)."""
    with store.db.read() as db:
        low, high = db.execute("SELECT MIN(id), MAX(id) FROM jobs").fetchone()
        if low is None:
            return 1
        low, high = int(low), int(high) + 1
        while low < high:  # the first existing id from ``middle`` on, submitted from ``at`` on or not
            middle = (low + high) // 2
            row = db.execute("SELECT id, submitted_at FROM jobs WHERE id>=? ORDER BY id LIMIT 1", (middle,)).fetchone()
            if row is None or float(row[1]) >= at:
                high = middle
            else:
                low = int(row[0]) + 1
    return low
