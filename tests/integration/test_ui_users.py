"""GPU-hours per user over time for the Users page (``store.usage_history``) on a real SQLite store:
each finished job in the bucket of its end, a running one at ``now``, from the ``jobs_ended`` index."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.model.job import JobSpec, JobState
from tuxai.model.resources import Request
from tuxai.store import Store
from tuxai.store.telemetry import EnergyDelta, TelemetryStore
from tuxai.store.usage_history import ENDED_SQL, buckets, gpu_hours_by_user

DAY = 86400.0
SPEC = JobSpec(command=("true",), name="t", request=Request())


def _job(store: Store, user: str, started: float, ended: float | None, gpu_s: float) -> int:
    job_id = store.submit(SPEC, (user, 1000, 1000, (1000,)), {}, now=started - 1)
    store.transition(job_id, JobState.RUNNING, started, "started", started_at=started)
    if ended is not None:
        store.transition(job_id, JobState.SUCCEEDED, ended, "exit 0", ended_at=ended)
    TelemetryStore(store).add_energy({job_id: EnergyDelta(1.0, 1.0, gpu_s)}, 400.0, 1.0, started)
    return job_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "tuxai.db")
    _job(store, "ada", 0.5 * DAY, 1.5 * DAY, 7200.0)  # ends in day 1
    _job(store, "ada", 2.2 * DAY, 2.5 * DAY, 3600.0)  # day 2
    _job(store, "bob", 0.1 * DAY, 0.2 * DAY, 1800.0)  # day 0
    _job(store, "bob", 9.0 * DAY, 9.5 * DAY, 3600.0)  # past the range
    _job(store, "cy", 2.9 * DAY, None, 5400.0)  # running: counted at now
    return store


def test_gpu_hours_land_in_the_bucket_of_each_jobs_end(store: Store) -> None:
    hours = gpu_hours_by_user(store, 0.0, 3 * DAY, int(DAY), now=2.95 * DAY)
    assert hours == {"ada": [0.0, 2.0, 1.0], "bob": [0.5, 0.0, 0.0], "cy": [0.0, 0.0, 1.5]}
    assert gpu_hours_by_user(store, 0.0, 3 * DAY, int(DAY), now=5 * DAY, user="cy") == {}  # now outside the range
    assert gpu_hours_by_user(store, 0.0, 3 * DAY, int(DAY), now=2.95 * DAY, user="bob") == {"bob": [0.5, 0.0, 0.0]}
    assert buckets(0.0, 250.0, 100) == (0.0, 100.0, 200.0)


def test_the_range_is_read_from_the_ended_index_not_a_scan_of_every_job(store: Store) -> None:
    with store.db.read() as db:
        plan = " | ".join(
            str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + ENDED_SQL.format(mine=""), (0, 1, 0, 1))
        )
    assert "USING INDEX jobs_ended (ended_at>? AND ended_at<?)" in plan, plan
    assert "SCAN j" not in plan and "SCAN jobs" not in plan, plan
