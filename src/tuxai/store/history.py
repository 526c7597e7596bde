"""The dashboard's read-only history query: one page of jobs, newest first, from the indexes.

``page`` walks the primary key backwards from ``before`` (keyset paging: the cost of page N is the
cost of page 1) with the ``state`` and ``user`` filters, and stops after ``limit`` rows; no query
here reads every job or every telemetry sample.
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
) -> list[JobRecord]:
    """Up to ``limit`` jobs with ids below ``before`` (None: the newest), in ``states`` and of ``user``
    when given, newest first."""
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
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(max(1, min(limit, MAX_PAGE)))
    with store.db.read() as db:
        rows = db.execute(f"SELECT * FROM jobs{where} ORDER BY id DESC LIMIT ?", params).fetchall()
    return [_record(row, store._specs) for row in rows]
