"""Telemetry in the store: GPU series at 1 s / 1 min / 1 h, pruned to a bound; each job's energy.

Retention: 1 s rows for an hour, 1 min rows for a week, 1 h rows for a year. ``rollup(now)``
folds finished minutes and hours into the coarser tiers; ``prune(now)`` drops what aged out,
so the file stops growing once a year of hours is there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuxai.store.jobs import Store

RETENTION_S = {1: 3600.0, 60: 7 * 86400.0, 3600: 365 * 86400.0}
_FINER = {60: 1, 3600: 60}


@dataclass(frozen=True)
class SampleRow:
    """One GPU's 1 s sample as stored (None: the sampler could not say)."""

    gpu: int
    at: float
    util_pct: float | None
    memory_used_bytes: float | None
    power_w: float | None
    energy_j: float | None  # in the interval since the previous sample
    temperature_c: float | None


@dataclass(frozen=True)
class EnergyDelta:
    """What one job used since the last step: joules on GPUs and CPUs, GPU-seconds, and how measured."""

    gpu_j: float
    cpu_j: float
    gpu_s: float
    methods: dict[str, str] = field(default_factory=dict)


class TelemetryStore:
    """The telemetry tables of one ``Store`` (same file, same database)."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    def add_samples(self, rows: Sequence[SampleRow]) -> None:
        """Store 1 s rows."""
        if not rows:
            return
        with self.db.write(durable=False) as db:
            db.executemany(
                "INSERT OR REPLACE INTO gpu_series (resolution, gpu, at, util_pct, memory_used, power_w, energy_j,"
                " temperature_c) VALUES (1,?,?,?,?,?,?,?)",
                [(r.gpu, r.at, r.util_pct, r.memory_used_bytes, r.power_w, r.energy_j, r.temperature_c) for r in rows],
            )

    def rollup(self, now: float) -> None:
        """Fold every finished minute (and hour) of the finer tier into the coarser one."""
        with self.db.write(durable=False) as db:
            for resolution, finer in _FINER.items():
                done = int(now // resolution) * resolution
                row = db.execute("SELECT MAX(at) FROM gpu_series WHERE resolution=?", (resolution,)).fetchone()
                start = (row[0] + resolution) if row[0] is not None else 0.0
                db.execute(
                    "INSERT OR REPLACE INTO gpu_series SELECT ?, gpu, CAST(at / ? AS INTEGER) * ?, AVG(util_pct),"
                    " AVG(memory_used), AVG(power_w), SUM(energy_j), AVG(temperature_c) FROM gpu_series"
                    " WHERE resolution=? AND at >= ? AND at < ? GROUP BY gpu, CAST(at / ? AS INTEGER)",
                    (resolution, resolution, resolution, finer, start, done, resolution),
                )

    def prune(self, now: float) -> int:
        """Delete rows older than their tier keeps; how many went."""
        removed = 0
        with self.db.write(durable=False) as db:
            for resolution, keep in RETENTION_S.items():
                cursor = db.execute(
                    "DELETE FROM gpu_series WHERE resolution=? AND at < ?", (resolution, now - keep)
                )
                removed += cursor.rowcount
        return removed

    def series(self, gpu: int, resolution: int, since: float) -> list[dict[str, Any]]:
        """One GPU's rows of one tier since ``since``."""
        with self.db.read() as db:
            rows = db.execute(
                "SELECT at, util_pct, memory_used, power_w, energy_j, temperature_c FROM gpu_series"
                " WHERE resolution=? AND gpu=? AND at >= ? ORDER BY at",
                (resolution, gpu, since),
            ).fetchall()
        return [dict(row) for row in rows]

    def counts(self) -> dict[int, int]:
        """Rows per tier."""
        with self.db.read() as db:
            rows = db.execute(
                "SELECT resolution, COUNT(*) FROM gpu_series GROUP BY resolution"
            ).fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    def add_energy(self, deltas: Mapping[int, EnergyDelta], grid: float, pue: float, now: float) -> None:
        """Add each job's ``EnergyDelta``; the grid factors are kept from the first."""
        if not deltas:
            return
        with self.db.write(durable=False) as db:
            for job_id, delta in deltas.items():
                gpu_j, cpu_j, gpu_s = delta.gpu_j, delta.cpu_j, delta.gpu_s
                row = db.execute("SELECT methods_json FROM job_energy WHERE job_id=?", (job_id,)).fetchone()
                merged = {**(json.loads(row[0]) if row else {}), **delta.methods}
                db.execute(
                    "INSERT INTO job_energy (job_id, gpu_j, cpu_j, gpu_s, methods_json, grid_g_per_kwh, pue,"
                    " updated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(job_id) DO UPDATE SET"
                    " gpu_j=gpu_j+excluded.gpu_j, cpu_j=cpu_j+excluded.cpu_j, gpu_s=gpu_s+excluded.gpu_s,"
                    " methods_json=excluded.methods_json, updated_at=excluded.updated_at",
                    (job_id, gpu_j, cpu_j, gpu_s, json.dumps(merged), grid, pue, now),
                )

    def energy(self, job_id: int) -> dict[str, Any] | None:
        """A job's energy row (joules, GPU-seconds, methods, grid factors), or None."""
        return self.energy_of([job_id]).get(job_id)

    def energy_of(self, job_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The energy rows of these jobs in one read (a page of the history), by job id; none: absent."""
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        with self.db.read() as db:
            rows = db.execute(f"SELECT * FROM job_energy WHERE job_id IN ({marks})", tuple(job_ids)).fetchall()
        found = {}
        for row in rows:
            data = dict(row)
            data["methods"] = json.loads(data.pop("methods_json"))
            found[int(data["job_id"])] = data
        return found

    def all_energy(self) -> dict[int, dict[str, Any]]:
        """Every job's energy row, by job id (for the metrics)."""
        with self.db.read() as db:
            rows = db.execute("SELECT job_id, gpu_j, cpu_j, gpu_s FROM job_energy").fetchall()
        return {int(r["job_id"]): dict(r) for r in rows}
