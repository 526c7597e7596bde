"""A cluster job's telemetry (issue 15): its ranks sampled on their own nodes (``telemetry.ranks``,
through each node's kept launcher, ``executor.ray``'s ``samples``) and folded as a local job's are:
the job's usage (CPU seconds and memory summed over its ranks), its energy (each rank's GPUs' power over
the step, its CPU time at the configured watts per CPU), its GPU use (mean utilization, peak memory); and
each rank's own row with its node named (``LiveView.ranks``, which `tuxai top` lists under the job).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuxai.executor.attempt import AttemptHandle
from tuxai.executor.rundir import rank_output
from tuxai.model.job import JobRecord
from tuxai.model.wire_gpus import LiveRank, LiveRankGpu
from tuxai.store.job_gpu_use import GpuUse
from tuxai.store.telemetry import EnergyDelta
from tuxai.telemetry.collector import TelemetryConfig
from tuxai.telemetry.detection import DetectionConfig, Watch
from tuxai.telemetry.samples import JobUsage

if TYPE_CHECKING:
    from tuxai.daemon.telemetry import TelemetryLoop

# Every attempt's ranks at once: (rank, telemetry.ranks.RankSample) in rank order, for each attempt asked.
Samples = Callable[[Sequence[AttemptHandle]], "list[list[tuple[int, Any]]]"]


def live_ranks(found: Sequence[tuple[int, Any]]) -> tuple[LiveRank, ...]:
    """The ranks' samples (``telemetry.ranks.RankSample``) as the wire shows them."""
    return tuple(
        LiveRank(
            rank,
            s.node,
            s.at,
            s.cpu_s,
            s.memory_bytes,
            tuple(LiveRankGpu(g.uuid, g.util_pct, g.memory_used_bytes, g.power_w) for g in s.gpus),
        )
        for rank, s in found
    )


class ClusterTelemetry:
    """Each step: every running cluster job's ranks asked on their nodes, folded into the job's rows."""

    def __init__(self, samples: Samples, watts_per_cpu: float, detection: DetectionConfig | None = None) -> None:
        """``samples``: a job's ranks sampled on their nodes (the executor's); ``watts_per_cpu``: the
        CPU energy estimate (a node's RAPL is not read from here); ``detection``: when a job is idle or hung."""
        self.samples, self.watts_per_cpu = samples, watts_per_cpu
        self.detection = detection or DetectionConfig()
        self.ranks: dict[int, tuple[LiveRank, ...]] = {}  # by job id, at the last step
        self._last: dict[int, tuple[float, float]] = {}  # job → (when, its ranks' CPU seconds)
        self._watches: dict[int, Watch] = {}  # job → its last signs of life (idle, hung), as on one box
        self.flags: dict[int, set[str]] = {}  # by job id, at the last step
        self._kept: dict[int, dict[int, Any]] = {}  # job → rank → its last sample (a rank missing keeps it)

    def step(
        self, now: float, jobs: Sequence[JobRecord]
    ) -> tuple[dict[int, JobUsage], dict[int, EnergyDelta], dict[int, GpuUse]]:
        """The running ``jobs``' usage, energy since the last step and GPU use, from their ranks' samples."""
        usage, energy, use, ranks = {}, {}, {}, {}
        asked = [job for job in jobs if job.run_dir]
        answers = self.samples([AttemptHandle(job.run_dir or "") for job in asked]) if asked else []
        fresh = {job.id: found for job, found in zip(asked, answers, strict=True)}
        for job in jobs:
            kept = self._kept.setdefault(job.id, {})
            kept.update(fresh.get(job.id, []))  # a rank that did not answer this step keeps its last sample
            found, gpus = sorted(kept.items()), [g for _, s in fresh.get(job.id, []) for g in s.gpus]
            rows = live_ranks(found)
            if not rows:
                continue
            self.flags[job.id] = self._watch(job, now, found, gpus)
            ranks[job.id] = rows
            cpu, memory = sum(r.cpu_s for r in rows), sum(r.memory_bytes for r in rows)
            usage[job.id] = JobUsage(job.id, now, cpu, memory)
            when, before = self._last.get(job.id, (now, cpu))
            self._last[job.id] = (now, max(cpu, before))
            elapsed = max(0.0, now - when)  # the GPUs of the ranks that answered: one not heard from is not guessed
            methods = {
                "gpu": "sampled on each node: power × time",
                "cpu": f"estimate, {self.watts_per_cpu:g} W per CPU",
            }
            gpu_j = sum((g.power_w or 0.0) * elapsed for g in gpus)
            energy[job.id] = EnergyDelta(
                gpu_j, max(0.0, cpu - before) * self.watts_per_cpu, elapsed * len(gpus), methods
            )
            utils = [g.util_pct for g in gpus if g.util_pct is not None]
            peaks = [g.memory_used_bytes for g in gpus if g.memory_used_bytes is not None]
            if utils or peaks:
                use[job.id] = GpuUse(
                    sum(utils) / len(utils) if utils else 0.0, 1 if utils else 0, max(peaks, default=None)
                )
        running = {job.id for job in jobs}
        self._last = {j: v for j, v in self._last.items() if j in running}
        self._watches = {j: w for j, w in self._watches.items() if j in running}
        self._kept = {j: k for j, k in self._kept.items() if j in running}
        self.flags = {j: f for j, f in self.flags.items() if j in usage}
        self.ranks = ranks
        return usage, energy, use

    def _watch(self, job: JobRecord, now: float, found: Sequence[tuple[int, Any]], gpus: Sequence[Any]) -> set[str]:
        """The job's idle and hung flags from its ranks (``telemetry.detection``: the GPUs' use of the ranks
        that answered, every rank's CPU time as last sampled, the growth of every rank's log, a rank still
        building its environment included), as a local job's."""
        watch = self._watches.setdefault(job.id, Watch(since=now, holds_gpus=bool(gpus)))
        logs = Path(job.log_path).parent if job.log_path else None
        log_bytes = sum(_size(logs / rank_output(r)) for r in range(max(1, job.spec.nodes))) if logs else 0
        utils = [g.util_pct or 0.0 for g in gpus]
        fractions = [g.power_w / g.power_limit_w if g.power_w and g.power_limit_w else None for g in gpus]
        return watch.update(now, sum(s.cpu_s for _, s in found), log_bytes, utils, fractions, self.detection)

    def record(self, loop: TelemetryLoop, now: float, jobs: Sequence[JobRecord], flags: dict[int, set[str]]) -> None:
        """One step stored as the telemetry loop stores a local one (the loop's usage is the ranks'; their
        flags added to ``flags``, the step's)."""
        usage, energy, use = self.step(now, jobs)
        loop.telemetry.usage, loop.telemetry.flags = usage, {**loop.telemetry.flags, **self.flags}
        flags.update(self.flags)
        config = loop.telemetry.config
        loop.store.add_energy(energy, config.grid_g_per_kwh, config.pue, now)
        loop.use.add(use)


def cluster_telemetry(executor: object, config: TelemetryConfig) -> ClusterTelemetry | None:
    """The cluster telemetry of a daemon whose executor samples its ranks on their nodes (Ray's), else None."""
    samples = getattr(executor, "samples", None)
    return ClusterTelemetry(samples, config.watts_per_cpu, config.detection) if callable(samples) else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
