"""Each job's GPU use while it ran, kept as it runs so that it is whole when the job ends: the mean
utilization of its GPUs (over its samples, each the mean of its GPUs) and the peak memory any of its
GPUs held. The telemetry thread folds each second's samples in (``fold``, pure; ``add``); the Jobs page
reads a page of jobs' summaries by primary key (``of``), never the samples.

A MIG instance or a shared slice is read on its whole GPU (the sampler sees the GPU): its numbers are
the GPU's, as the Overview's are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuxai.store.jobs import Store
from tuxai.store.telemetry import SampleRow


@dataclass(frozen=True)
class GpuUse:
    """One job's GPU use so far: the sum and count of its samples' mean utilization, its GPUs' peak memory."""

    util_sum: float
    util_n: int
    memory_peak_bytes: float | None

    @property
    def util_mean_pct(self) -> float | None:
        """The mean utilization of the job's GPUs over its samples (None: no sample said)."""
        return self.util_sum / self.util_n if self.util_n else None


def fold(rows: Sequence[SampleRow], held: Mapping[int, Sequence[int]]) -> dict[int, GpuUse]:
    """One step's samples as each job's share of it: ``held`` maps a job to its GPUs' indices.

    >>> fold([SampleRow(0, 1.0, 40.0, 5.0, None, None, None), SampleRow(1, 1.0, 60.0, 9.0, None, None, None)],
    ...      {7: (0, 1)})
    {7: GpuUse(util_sum=50.0, util_n=1, memory_peak_bytes=9.0)}
    """
    by_gpu = {row.gpu: row for row in rows}
    found = {}
    for job_id, gpus in held.items():
        seen = [by_gpu[g] for g in gpus if g in by_gpu]
        utils = [r.util_pct for r in seen if r.util_pct is not None]
        memory = [r.memory_used_bytes for r in seen if r.memory_used_bytes is not None]
        if utils or memory:
            util = sum(utils) / len(utils) if utils else 0.0
            found[job_id] = GpuUse(util, 1 if utils else 0, max(memory) if memory else None)
    return found


class JobGpuUseStore:
    """The ``job_gpu_use`` table of one ``Store`` (migration 7)."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    def add(self, used: Mapping[int, GpuUse]) -> None:
        """Fold each job's step into its summary (the peak kept, the sums added)."""
        if not used:
            return
        with self.db.write(durable=False) as db:
            db.executemany(
                "INSERT INTO job_gpu_use (job_id, util_sum, util_n, memory_peak) VALUES (?,?,?,?)"
                " ON CONFLICT(job_id) DO UPDATE SET util_sum=util_sum+excluded.util_sum,"
                " util_n=util_n+excluded.util_n,"
                " memory_peak=NULLIF(MAX(COALESCE(memory_peak, -1), COALESCE(excluded.memory_peak, -1)), -1)",
                [(job_id, u.util_sum, u.util_n, u.memory_peak_bytes) for job_id, u in used.items()],
            )

    def of(self, job_ids: Sequence[int]) -> dict[int, GpuUse]:
        """The summaries of these jobs (one primary-key read each; a job without samples is absent)."""
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        with self.db.read() as db:
            rows = db.execute(
                f"SELECT job_id, util_sum, util_n, memory_peak FROM job_gpu_use WHERE job_id IN ({marks})",
                tuple(job_ids),
            ).fetchall()
        return {int(r[0]): GpuUse(float(r[1]), int(r[2]), None if r[3] is None else float(r[3])) for r in rows}
