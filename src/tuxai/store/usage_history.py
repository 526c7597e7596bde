"""GPU-hours per user over time for the dashboard's Users page, from the jobs' measured GPU-seconds
(``job_energy``, the Jobs page's GPU-hours): a finished job counts in the bucket of its end, a running
one in the bucket of ``now``. Read through the ``jobs_ended`` index (migration 6) and ``jobs_state``:
a range of a month reads that month's jobs, never the whole history.
"""

from __future__ import annotations

import math

from tuxai.store.jobs import Store

ENDED_SQL = (
    "SELECT j.user, CAST((j.ended_at - ?) / ? AS INTEGER) AS b, SUM(e.gpu_s) FROM jobs j"
    " JOIN job_energy e ON e.job_id = j.id WHERE j.ended_at >= ? AND j.ended_at < ?{mine} GROUP BY j.user, b"
)
RUNNING_SQL = (
    "SELECT j.user, SUM(e.gpu_s) FROM jobs j JOIN job_energy e ON e.job_id = j.id"
    " WHERE j.state = 'running'{mine} GROUP BY j.user"
)


def buckets(since: float, until: float, bucket_s: int) -> tuple[float, ...]:
    """The starts of the buckets from ``since`` to ``until``. Example: (0, 250, 100) → (0, 100, 200)."""
    return tuple(since + i * bucket_s for i in range(max(1, math.ceil((until - since) / bucket_s))))


def gpu_hours_by_user(
    store: Store, since: float, until: float, bucket_s: int, now: float, user: str = ""
) -> dict[str, list[float]]:
    """Each user's GPU-hours in each bucket of ``buckets(since, until, bucket_s)`` (only ``user``'s when
    given); the running jobs' so far counted at ``now`` when it falls in the range."""
    count = len(buckets(since, until, bucket_s))
    mine, extra = (" AND j.user = ?", (user,)) if user else ("", ())
    with store.db.read() as db:
        ended = db.execute(ENDED_SQL.format(mine=mine), (since, bucket_s, since, until, *extra)).fetchall()
        running = db.execute(RUNNING_SQL.format(mine=mine), extra).fetchall() if since <= now < until else []
    hours: dict[str, list[float]] = {}
    for name, index, gpu_s in ended:
        hours.setdefault(name, [0.0] * count)[min(int(index), count - 1)] += float(gpu_s) / 3600
    now_index = min(count - 1, int((now - since) // bucket_s))
    for name, gpu_s in running:
        hours.setdefault(name, [0.0] * count)[now_index] += float(gpu_s) / 3600
    return hours
