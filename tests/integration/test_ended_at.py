"""A job that ends without a run (cancelled while pending) has its end: its "waited" stops there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tuxai.model.job import JobSpec, JobState
from tuxai.model.resources import Request
from tuxai.store import Store


def test_a_job_cancelled_pending_ends_when_cancelled_also_in_an_older_store(tmp_path: Path) -> None:
    spec = JobSpec(command=("true",), name="t", request=Request())
    store = Store(tmp_path / "tuxai.db")
    job_id = store.submit(spec, ("ada", 1000, 1000, (1000,)), {}, now=100.0)
    assert store.transition(job_id, JobState.CANCELLED, 130.0, "cancelled by ada").ended_at == 130.0
    old = store.submit(spec, ("ada", 1000, 1000, (1000,)), {}, now=200.0)
    store.transition(old, JobState.CANCELLED, 260.0, "cancelled by ada", ended_at=None)  # as stored before
    with sqlite3.connect(tmp_path / "tuxai.db") as db:
        db.execute("PRAGMA user_version=3")
    store.close()
    again = Store(tmp_path / "tuxai.db")  # migration 4: its end is its last event
    assert again.get(old).ended_at == 260.0 and again.get(job_id).ended_at == 130.0
