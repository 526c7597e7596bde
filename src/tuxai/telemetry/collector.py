"""``Telemetry.step(now, running)``: one look at the machine → samples, each job's energy, flags.

The daemon's telemetry thread calls it every period (1 s by default) and stores what it
returns; nothing here knows SQL or the daemon. Time comes in as ``now``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tuxai.model.cgroup import CgroupPlan
from tuxai.telemetry import procfs
from tuxai.telemetry.detection import DetectionConfig, Watch
from tuxai.telemetry.energy import EnergyMeter, Holding, JobEnergy, attribute_cpu, attribute_gpus
from tuxai.telemetry.rapl import RAPL_HINT, RaplReading, counter_delta, read_rapl
from tuxai.telemetry.samplers import GpuSampler
from tuxai.telemetry.samples import GpuSample, JobUsage


@dataclass(frozen=True)
class TelemetryConfig:
    """How often to look, how to turn CPU time into watts without RAPL, and CO2e factors."""

    period_s: float = 1.0
    watts_per_cpu: float = 10.0
    grid_g_per_kwh: float = 475.0  # world average (IEA); set yours
    pue: float = 1.0  # a box in an office; a data centre is 1.1-1.6
    ring_size: int = 600
    detection: DetectionConfig = field(default_factory=DetectionConfig)


@dataclass(frozen=True)
class RunningJob:
    """What telemetry needs of a running job."""

    job_id: int
    user: str
    pgid: int | None
    holdings: tuple[Holding, ...]
    log_path: str = ""
    cgroup: CgroupPlan = field(default_factory=CgroupPlan)  # its groups, when it has some


@dataclass
class StepResult:
    """One step's samples, the energy each job used in it, its usage and its flags."""

    samples: list[GpuSample]
    energy: dict[int, JobEnergy]
    usage: dict[int, JobUsage]
    flags: dict[int, set[str]]
    gpu_energy_j: dict[int, tuple[float, str]]


class Telemetry:
    """Samplers, meters and watches of one machine."""

    def __init__(
        self,
        sampler: GpuSampler,
        config: TelemetryConfig,
        rapl: Callable[[], RaplReading] = read_rapl,
        proc: Path = Path("/proc"),
    ) -> None:
        self.sampler, self.config, self._rapl, self._proc = sampler, config, rapl, proc
        self.meter = EnergyMeter()
        self.ring: deque[list[GpuSample]] = deque(maxlen=config.ring_size)
        self.latest: list[GpuSample] = []
        self.usage: dict[int, JobUsage] = {}
        self.flags: dict[int, set[str]] = {}
        self._watches: dict[int, Watch] = {}
        self._last_at: float | None = None
        self._host_cpu: float | None = None
        self._rapl_last: RaplReading | None = None
        first = rapl()
        self.cpu_method = "rapl" if not first.problem else "estimate"
        # The hint only where a permission is what stands in the way.
        fixable = "root only" in first.problem
        self.cpu_problem = f"{first.problem} ({RAPL_HINT})" if fixable else first.problem
        self._rapl_last = None if first.problem else first

    def _host_energy(self) -> float | None:
        if self._rapl_last is None:
            return None
        reading = self._rapl()
        if reading.problem:
            return None
        joules = sum(
            counter_delta(self._rapl_last.packages_j.get(zone, value), value, reading.ranges_j.get(zone, 0.0))
            for zone, value in reading.packages_j.items()
        )
        self._rapl_last = reading
        return joules

    def _usage(self, now: float, running: Sequence[RunningJob]) -> dict[int, JobUsage]:
        groups = procfs.group_usage({j.pgid for j in running if j.pgid}, self._proc)
        usage = {}
        for job in running:
            cpu, rss, read, written, pids = groups.get(job.pgid or -1, (0.0, 0, 0, 0, frozenset()))
            if job.cgroup:  # the cgroup counts what left the process group too
                group_cpu, group_memory = procfs.cgroup_usage(job.cgroup)
                cpu = group_cpu if group_cpu is not None else cpu
                rss = group_memory if group_memory is not None else rss
            previous = self.usage.get(job.job_id)
            if previous is not None and cpu < previous.cpu_s:
                cpu = previous.cpu_s  # a child exited unwaited: its time left the group's sum
            try:
                log_bytes = os.stat(job.log_path).st_size if job.log_path else 0
            except OSError:
                log_bytes = 0
            usage[job.job_id] = JobUsage(job.job_id, now, cpu, rss, read, written, pids, log_bytes)
        return usage

    def step(self, now: float, running: Sequence[RunningJob]) -> StepResult:
        """Sample, integrate, attribute, detect."""
        elapsed = 0.0 if self._last_at is None else max(0.0, now - self._last_at)
        self._last_at = now
        usage = self._usage(now, running)
        cpu_delta = {
            j: max(0.0, u.cpu_s - self.usage[j].cpu_s) if j in self.usage else 0.0 for j, u in usage.items()
        }
        busy: dict[int, float] = {}
        for job in running:
            rate = cpu_delta[job.job_id] / elapsed if elapsed > 0 else 0.0
            for holding in job.holdings:
                busy[holding.gpu_index] = min(1.0, busy.get(holding.gpu_index, 0.0) + rate)
        samples = self.sampler.sample(now, busy)
        gpu_energy = self.meter.step(samples, simulated=self.sampler.method == "simulated")
        energy = attribute_gpus(
            gpu_energy,
            [h for job in running for h in job.holdings],
            {s.index: s.processes for s in samples},
            {j: u.pids for j, u in usage.items()},
            elapsed,
        )
        host_cpu = procfs.host_cpu_seconds(self._proc)
        host_delta = 0.0 if self._host_cpu is None else max(0.0, host_cpu - self._host_cpu)
        self._host_cpu = host_cpu
        for job_id, (joules, method) in attribute_cpu(
            self._host_energy(), host_delta, cpu_delta, self.config.watts_per_cpu
        ).items():
            share = energy.setdefault(job_id, JobEnergy())
            share.cpu_j += joules
            share.methods["cpu"] = method
        by_index = {s.index: s for s in samples}
        flags = {}
        for job in running:
            watch = self._watches.get(job.job_id)
            if watch is None:
                watch = self._watches[job.job_id] = Watch(since=now, holds_gpus=bool(job.holdings))
            held = [by_index[h.gpu_index] for h in job.holdings if h.gpu_index in by_index]
            fractions = [s.power_w / s.power_limit_w if s.power_w and s.power_limit_w else None for s in held]
            flags[job.job_id] = watch.update(
                now,
                usage[job.job_id].cpu_s,
                usage[job.job_id].log_bytes,
                [s.util_pct or 0.0 for s in held],
                fractions,
                self.config.detection,
            )
        for gone in set(self._watches) - set(usage):
            self._watches.pop(gone, None)
        self.usage, self.flags, self.latest = usage, flags, samples
        self.ring.append(samples)
        return StepResult(samples, energy, usage, flags, gpu_energy)
