"""``Store``: jobs, their events and the users' usage in one SQLite file (``store.database``).

One process writes (the daemon); its threads share one connection behind a lock. What a
person asked for is durable when the call returns (``synchronous=FULL``: submit, cancel,
hold). What the control loop writes is not fsynced one by one (``NORMAL``): after a power
cut it is rebuilt from the run directories (the shims fsync their final status), and the
WAL is sequential, so the next durable commit carries it too.
Every state change goes through ``transition``, which checks the table of
``tuxai.model.job`` and the current state in the same ``UPDATE`` (no lost update).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuxai.errors import InvalidTransition, JobNotFound
from tuxai.model.job import JobRecord, JobSpec, JobState, StopReason, check_transition
from tuxai.model.jobfile import spec_from_dict, spec_to_dict
from tuxai.model.resources import Allocation, allocation_from_dict, allocation_to_dict
from tuxai.store.database import Database

_COLUMNS = {
    "reason",
    "flags",
    "eligible_at",
    "started_at",
    "ended_at",
    "exit_code",
    "signal",
    "attempt",
    "failures",
    "requeues",
    "held",
    "stop_request",
    "for_job",
    "allocation",
    "log_path",
    "run_dir",
    "wall_s",
    "cpu_s",
    "max_rss_bytes",
    "oom_killed",
    "rank_exits",
}


@dataclass(frozen=True)
class Usage:
    """A user's decayed GPU usage (fair share) as of ``updated_at``."""

    gpu_seconds: float
    updated_at: float


@dataclass(frozen=True)
class Run:
    """One attempt of a job, from its history: whose, how many GPUs, from ``started`` to ``ended`` (None: running)."""

    job_id: int
    user: str
    gid: int
    groups: tuple[int, ...]
    gpus: float  # GPU equivalents: a slice counts its share
    started: float
    ended: float | None


class Store:
    """The jobs table and friends. Methods are thread-safe; time comes in as ``now``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Database(path)
        self._specs: dict[int, JobSpec] = {}  # a spec never changes after submit: parse it once

    def close(self) -> None:
        """Close the store's connection."""
        self.db.close()

    def submit(
        self,
        spec: JobSpec,
        owner: tuple[str, int, int, Sequence[int]],
        environment: dict[str, str],
        now: float,
        reason: str = "",
    ) -> int:
        """Insert a pending job for ``owner`` (user, uid, gid, groups); returns its id once committed.

        ``environment`` is the submitter's environment, the base of the job's. An array
        (``spec.array``) is one job per index, all in this one transaction; the first one's id,
        returned, is the array's.
        """
        user, uid, gid, groups = owner
        row = (
            *(spec.display_name, user, uid, gid, json.dumps(list(groups)), json.dumps(spec_to_dict(spec))),
            *(json.dumps(environment), JobState.PENDING.value, reason, spec.priority, now, int(spec.held)),
        )  # the same for every task of an array: made once
        indices = spec.array.indices if spec.array else ()
        with self.db.write() as db:
            first = _insert(db, row, now, None, indices[0] if indices else None)
            if indices:
                db.execute("UPDATE jobs SET array_job=? WHERE id=?", (first, first))
            for index in indices[1:]:
                _insert(db, row, now, first, index)
        return first

    def get(self, job_id: int) -> JobRecord:
        """One job. Raises ``JobNotFound``."""
        with self.db.read() as db:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _record(row, self._specs)

    def jobs(self, states: Sequence[JobState] | None = None, user: str | None = None) -> list[JobRecord]:
        """Jobs in id order, optionally only in ``states`` and of ``user``."""
        clauses: list[str] = []
        params: list[str] = []
        if states is not None:
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(s.value for s in states)
        if user is not None:
            clauses.append("user=?")
            params.append(user)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.db.read() as db:
            rows = db.execute(f"SELECT * FROM jobs{where} ORDER BY id", params).fetchall()
        return [_record(row, self._specs) for row in rows]

    def transition(self, job_id: int, target: JobState, now: float, reason: str, **fields: Any) -> JobRecord:
        """Move a job to ``target`` (checked against the table), setting ``fields``, with an event.

        Raises:
            InvalidTransition: the table does not allow it from the job's current state.
            JobNotFound: no such job.
        """
        with self.db.write() as db:
            self._transition(db, job_id, target, now, reason, fields)
        return self.get(job_id)

    def transitions(
        self, changes: Sequence[tuple[int, JobState, str, dict[str, Any]]], now: float, durable: bool = False
    ) -> list[int]:
        """Several transitions in one transaction, not fsynced (the control loop's; ``durable`` for what a
        person asked: an array's cancel); a change the table forbids is left out.

        Returns the ids that moved.
        """
        moved = []
        with self.db.write(durable=durable) as db:
            for job_id, target, reason, fields in changes:
                try:
                    self._transition(db, job_id, target, now, reason, fields)
                except InvalidTransition:
                    continue
                moved.append(job_id)
        return moved

    def _transition(
        self, db: sqlite3.Connection, job_id: int, target: JobState, now: float, reason: str, fields: dict[str, Any]
    ) -> None:
        row = db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        current = JobState(row["state"])
        check_transition(job_id, current, target)
        if target.terminal:  # a job's end is when it reached its last state, also without a run (cancelled pending)
            fields = {"ended_at": now, **fields}
        names, values = _assignments({**fields, "reason": reason})
        db.execute(
            f"UPDATE jobs SET state=?, {names} WHERE id=? AND state=?",
            (target.value, *values, job_id, current.value),
        )
        db.execute(
            "INSERT INTO events (job_id, at, from_state, to_state, reason) VALUES (?,?,?,?,?)",
            (job_id, now, current.value, target.value, reason),
        )

    def update(self, job_id: int, **fields: Any) -> None:
        """Set fields without a state change (a pending reason, a stop request, the hold flag)."""
        names, values = _assignments(fields)
        with self.db.write() as db:
            db.execute(f"UPDATE jobs SET {names} WHERE id=?", (*values, job_id))

    def update_many(self, changes: Sequence[tuple[int, dict[str, Any]]], durable: bool = False) -> None:
        """Several ``update``s in one transaction, not fsynced (the control loop's reasons; ``durable``
        for what a person asked: an array's hold)."""
        if not changes:
            return
        with self.db.write(durable=durable) as db:
            for job_id, fields in changes:
                names, values = _assignments(fields)
                db.execute(f"UPDATE jobs SET {names} WHERE id=?", (*values, job_id))

    def note(self, job_id: int, now: float, reason: str, **fields: Any) -> None:
        """Set fields and record an event without a state change (an idle or hung flag)."""
        names, values = _assignments(fields) if fields else ("", [])
        with self.db.write(durable=False) as db:
            row = db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            if names:
                db.execute(f"UPDATE jobs SET {names} WHERE id=?", (*values, job_id))
            db.execute(
                "INSERT INTO events (job_id, at, from_state, to_state, reason) VALUES (?,?,?,?,?)",
                (job_id, now, row["state"], row["state"], reason),
            )

    def environment(self, job_id: int) -> dict[str, str]:
        """The environment the job was submitted from."""
        with self.db.read() as db:
            row = db.execute("SELECT environment_json FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        loaded: dict[str, str] = json.loads(row[0])
        return loaded

    def events(self, job_id: int) -> list[dict[str, Any]]:
        """A job's history, oldest first."""
        with self.db.read() as db:
            rows = db.execute(
                "SELECT at, from_state, to_state, reason FROM events WHERE job_id=? ORDER BY id", (job_id,)
            ).fetchall()
        return [dict(row) for row in rows]

    def usage(self) -> dict[str, Usage]:
        """Each user's GPU-seconds and when they were last decayed."""
        with self.db.read() as db:
            rows = db.execute("SELECT user, gpu_seconds, updated_at FROM usage").fetchall()
        return {row["user"]: Usage(float(row["gpu_seconds"]), float(row["updated_at"])) for row in rows}

    def ended_before(self, cutoff: float) -> list[JobRecord]:
        """Jobs that ended before ``cutoff`` (retention: what ``forget`` may drop)."""
        terminal = [s.value for s in JobState if s.terminal]
        with self.db.read() as db:
            rows = db.execute(
                f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(terminal))}) AND ended_at < ? ORDER BY id",
                (*terminal, cutoff),
            ).fetchall()
        return [_record(row, self._specs) for row in rows]

    def forget(self, job_ids: Sequence[int]) -> None:
        """Drop ended jobs with their history and energy (their ids are never handed out again)."""
        if not job_ids:
            return
        marks = ",".join("?" * len(job_ids))
        with self.db.write(durable=False) as db:
            for table in ("events", "job_energy", "job_gpu_use"):
                db.execute(f"DELETE FROM {table} WHERE job_id IN ({marks})", tuple(job_ids))
            db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", tuple(job_ids))
        for job_id in job_ids:
            self._specs.pop(job_id, None)

    def set_usage(self, user: str, gpu_seconds: float, now: float) -> None:
        """Store a user's decayed usage as of ``now``."""
        with self.db.write(durable=False) as db:
            db.execute(
                "INSERT INTO usage (user, gpu_seconds, updated_at) VALUES (?,?,?)"
                " ON CONFLICT(user) DO UPDATE SET gpu_seconds=excluded.gpu_seconds, updated_at=excluded.updated_at",
                (user, gpu_seconds, now),
            )

    def runs_since(self, since: float) -> list[Run]:
        """Every run of a job (an attempt, from its history) going on at or after ``since``, ``ended``
        None while it runs: what the quotas' GPU-hours in a window count (``daemon.limits``)."""
        recent = "SELECT id FROM jobs WHERE state = 'running' OR ended_at >= ?"
        with self.db.read() as db:
            owners = db.execute(
                f"SELECT id, user, gid, groups_json, spec_json FROM jobs WHERE id IN ({recent})", (since,)
            ).fetchall()
            moves = db.execute(  # into running, or out of it
                f"SELECT job_id, at, to_state FROM events WHERE job_id IN ({recent})"
                " AND (to_state = 'running') <> (from_state IS 'running') ORDER BY id",
                (since,),
            ).fetchall()
        jobs = {int(row["id"]): row for row in owners}
        began: dict[int, float] = {}
        spans: list[tuple[int, float, float | None]] = []
        for job_id, at, to_state in moves:
            if to_state == JobState.RUNNING.value:
                began[job_id] = float(at)
            elif job_id in began:
                spans.append((job_id, began.pop(job_id), float(at)))
        spans += [(job_id, at, None) for job_id, at in began.items()]
        runs = []
        for job_id, start, end in spans:
            if job_id not in jobs or (end is not None and end < since):
                continue
            row = jobs[job_id]
            spec = self._specs.get(job_id)
            if spec is None:
                spec = self._specs[job_id] = spec_from_dict(json.loads(row["spec_json"]), origin=f"stored job {job_id}")
            groups = tuple(json.loads(row["groups_json"]))
            runs.append(Run(job_id, row["user"], int(row["gid"]), groups, spec.request.gpu_equivalents, start, end))
        return runs


def _insert(db: sqlite3.Connection, row: tuple[Any, ...], now: float, array_job: int | None, index: int | None) -> int:
    """One job row (``row``: its values up to ``held``) and its submission event; its id."""
    cursor = db.execute(
        "INSERT INTO jobs (name, user, uid, gid, groups_json, spec_json, environment_json, state, reason,"
        " priority, submitted_at, held, array_job, array_index) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (*row, array_job, index),
    )
    job_id = int(cursor.lastrowid or 0)
    db.execute(
        "INSERT INTO events (job_id, at, from_state, to_state, reason) VALUES (?,?,?,?,?)",
        (job_id, now, None, JobState.PENDING.value, "submitted"),
    )
    return job_id


def _assignments(fields: dict[str, Any]) -> tuple[str, list[Any]]:
    unknown = set(fields) - _COLUMNS
    if unknown:
        raise ValueError(f"not job columns: {sorted(unknown)}")
    names: list[str] = []
    values: list[Any] = []
    for key, value in fields.items():
        if key == "allocation":
            names.append("allocation_json=?")
            values.append(None if value is None else json.dumps(allocation_to_dict(value)))
        elif key == "rank_exits":
            names.append("rank_exits=?")
            values.append(json.dumps(list(value)))
        else:
            names.append(f"{key}=?")
            values.append(int(value) if isinstance(value, bool) else value)
    return ", ".join(names), values


def _record(row: sqlite3.Row, specs: dict[int, JobSpec]) -> JobRecord:
    job_id = int(row["id"])
    spec = specs.get(job_id)
    if spec is None:
        spec = specs[job_id] = spec_from_dict(json.loads(row["spec_json"]), origin=f"stored job {job_id}")
    allocation: Allocation | None = None
    if row["allocation_json"]:
        allocation = allocation_from_dict(json.loads(row["allocation_json"]))
    return JobRecord(
        id=job_id,
        spec=spec,
        user=row["user"],
        uid=int(row["uid"]),
        gid=int(row["gid"]),
        groups=tuple(json.loads(row["groups_json"])),
        state=JobState(row["state"]),
        reason=row["reason"],
        submitted_at=float(row["submitted_at"]),
        eligible_at=float(row["eligible_at"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        exit_code=row["exit_code"],
        signal=row["signal"],
        attempt=int(row["attempt"]),
        failures=int(row["failures"]),
        requeues=int(row["requeues"]),
        held=bool(row["held"]),
        stop_request=StopReason.parse(row["stop_request"]),
        for_job=row["for_job"],
        allocation=allocation,
        log_path=row["log_path"],
        run_dir=row["run_dir"],
        wall_s=row["wall_s"],
        cpu_s=row["cpu_s"],
        max_rss_bytes=row["max_rss_bytes"],
        oom_killed=bool(row["oom_killed"]),
        flags=tuple(f for f in row["flags"].split(",") if f),
        array_job=row["array_job"],
        array_index=row["array_index"],
        rank_exits=tuple(str(w) for w in json.loads(row["rank_exits"] or "[]")),
    )
