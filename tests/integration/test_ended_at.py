"""A job that ends without a run (cancelled while pending) has its end: its "waited" stops there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tuxai.model.job import JobSpec, JobState
from tuxai.model.resources import Request
from tuxai.store import Store, database
from tuxai.store.schema import MIGRATIONS


def test_a_job_cancelled_pending_ends_when_cancelled_also_in_an_older_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = JobSpec(command=("true",), name="t", request=Request())
    store = Store(tmp_path / "tuxai.db")
    job_id = store.submit(spec, ("ada", 1000, 1000, (1000,)), {}, now=100.0)
    assert store.transition(job_id, JobState.CANCELLED, 130.0, "cancelled by ada").ended_at == 130.0
    store.close()
    older = tmp_path / "older.db"
    with monkeypatch.context() as m:  # a store made by a tuxai that knew only the first 3 migrations
        m.setattr(database, "MIGRATIONS", MIGRATIONS[:3])
        store = Store(older)
        old = store.submit(spec, ("ada", 1000, 1000, (1000,)), {}, now=200.0)
        store.close()
    with sqlite3.connect(older) as db:  # cancelled as that tuxai stored it: an event, no end
        assert db.execute("PRAGMA user_version").fetchone() == (3,)
        db.execute("UPDATE jobs SET state = 'cancelled', ended_at = NULL WHERE id = ?", (old,))
        db.execute(
            "INSERT INTO events (job_id, at, from_state, to_state) VALUES (?, 260.0, 'pending', 'cancelled')",
            (old,),
        )
    again = Store(older)  # migration 4: its end is its last event; the later ones apply on top
    assert again.get(old).ended_at == 260.0
    assert Store(tmp_path / "tuxai.db").get(job_id).ended_at == 130.0
