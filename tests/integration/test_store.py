"""The store on real SQLite files: durable submits, checked transitions, bad files, a full disk."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tmpfs import mounted_tmpfs
from tuxai.errors import InvalidTransition, JobNotFound, StoreError
from tuxai.model.job import JobSpec, JobState
from tuxai.model.resources import Allocation, GpuShare, Request
from tuxai.store import Store

OWNER = ("ada", 1000, 1000, (1000, 27))


def _spec(name: str = "train") -> JobSpec:
    return JobSpec(command=("python", "train.py"), name=name, request=Request(gpus=1, cpus=2))


def test_submit_survives_reopen_with_everything(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuxai.db")
    job_id = store.submit(_spec(), OWNER, {"HOME": "/home/ada"}, now=100.0)
    allocation = Allocation("local", (GpuShare(1, "GPU-b"),), cpus=(2, 3))
    store.transition(job_id, JobState.RUNNING, 101.0, "", allocation=allocation, attempt=1, run_dir="/r")
    store.close()
    again = Store(tmp_path / "tuxai.db")
    job = again.get(job_id)
    assert (job.state, job.user, job.groups, job.spec, job.allocation) == (
        JobState.RUNNING, "ada", (1000, 27), _spec(), allocation
    )  # fmt: skip
    assert again.environment(job_id) == {"HOME": "/home/ada"}
    assert [e["to_state"] for e in again.events(job_id)] == ["pending", "running"]


def test_forbidden_transition_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuxai.db")
    job_id = store.submit(_spec(), OWNER, {}, now=1.0)
    with pytest.raises(InvalidTransition):
        store.transition(job_id, JobState.SUCCEEDED, 2.0, "")
    assert store.get(job_id).state is JobState.PENDING and len(store.events(job_id)) == 1
    with pytest.raises(JobNotFound):
        store.get(999)
    moved = store.transitions(
        [(job_id, JobState.RUNNING, "", {"attempt": 1}), (job_id, JobState.RUNNING, "", {"attempt": 2})], 3.0
    )
    assert moved == [job_id] and store.get(job_id).attempt == 1  # the second was left out, not half-applied


def test_newer_or_damaged_store_is_refused_with_a_reason(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with contextlib.closing(sqlite3.connect(newer)) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="schema version 99, newer than this tuxai"):
        Store(newer)
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(damaged)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (root only: CI runs as root)."""
    try:
        with mounted_tmpfs(tmp_path / "tiny", "512k") as mount:
            yield mount
    except PermissionError as exc:
        pytest.skip(f"{exc} (needs root)")


def test_full_disk_refuses_the_submit_and_keeps_the_store(tiny_disk: Path) -> None:
    store = Store(tiny_disk / "tuxai.db")
    kept = store.submit(_spec("kept"), OWNER, {}, now=1.0)
    big = {f"VAR{i}": "x" * 1000 for i in range(40)}
    with pytest.raises(StoreError) as caught:
        for i in range(1000):
            store.submit(_spec(f"job{i}"), OWNER, big, now=2.0)
    assert "free disk space" in caught.value.hint
    accepted = store.jobs()
    assert accepted[0].id == kept and accepted[0].spec.name == "kept"
    count = len(accepted)
    store.close()
    # Reopened (the disk still full), every job acknowledged before the failure is there.
    reopened = Store(tiny_disk / "tuxai.db")
    assert len(reopened.jobs()) == count
