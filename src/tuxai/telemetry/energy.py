"""Energy: joules per GPU between two samples, and who they belong to. Pure.

Methods, recorded per device as CodeCarbon labels its sources: ``counter`` (NVML's total
energy, Volta and newer), ``power integral`` (trapezoids of power draw), ``estimate`` (no
measurement: CPU time × watts per busy CPU), ``not attributable`` (a MIG instance: the
GPU's energy is not split between instances), ``simulated`` (a simulated inventory).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tuxai.telemetry.samples import GpuProcess, GpuSample

JOULES_PER_KWH = 3.6e6


class EnergyMeter:
    """Per GPU: the joules since its previous sample, by counter when it has one."""

    def __init__(self) -> None:
        self._last: dict[int, GpuSample] = {}

    def step(self, samples: Sequence[GpuSample], simulated: bool = False) -> dict[int, tuple[float, str]]:
        """Joules and method per GPU index since the previous call (none the first time)."""
        out: dict[int, tuple[float, str]] = {}
        for sample in samples:
            previous = self._last.get(sample.index)
            self._last[sample.index] = sample
            if previous is None or sample.at <= previous.at:
                continue
            elapsed = sample.at - previous.at
            if sample.energy_j is not None and previous.energy_j is not None and sample.energy_j >= previous.energy_j:
                out[sample.index] = (sample.energy_j - previous.energy_j, "simulated" if simulated else "counter")
            elif sample.power_w is not None and previous.power_w is not None:
                joules = (sample.power_w + previous.power_w) / 2 * elapsed
                out[sample.index] = (joules, "simulated" if simulated else "power integral")
        return out


@dataclass(frozen=True)
class Holding:
    """A running job's hold on one GPU: the whole of it (1000), a slice, or a MIG instance."""

    job_id: int
    gpu_index: int
    milli: int = 1000
    mig: bool = False


@dataclass
class JobEnergy:
    """What a job used so far: joules on GPUs and CPUs, GPU-seconds, the method per device."""

    gpu_j: float = 0.0
    cpu_j: float = 0.0
    gpu_s: float = 0.0
    methods: dict[str, str] = field(default_factory=dict)

    def add(self, other: JobEnergy) -> None:
        """Accumulate ``other`` into this one."""
        self.gpu_j += other.gpu_j
        self.cpu_j += other.cpu_j
        self.gpu_s += other.gpu_s
        self.methods.update(other.methods)


def attribute_gpus(
    energy: Mapping[int, tuple[float, str]],
    holdings: Sequence[Holding],
    processes: Mapping[int, tuple[GpuProcess, ...]],
    job_pids: Mapping[int, frozenset[int]],
    elapsed_s: float,
) -> dict[int, JobEnergy]:
    """Split each GPU's joules among the jobs holding it.

    Exclusive: all of it. Shared: by the SM utilization of each job's processes, else by
    slice. MIG: GPU-seconds counted, energy ``not attributable``. Idle GPUs: nobody's.
    """
    jobs: dict[int, JobEnergy] = {}
    by_gpu: dict[int, list[Holding]] = {}
    for holding in holdings:
        by_gpu.setdefault(holding.gpu_index, []).append(holding)
        share = jobs.setdefault(holding.job_id, JobEnergy())
        share.gpu_s += holding.milli / 1000 * elapsed_s
    for index, holders in by_gpu.items():
        device = f"gpu{index}"
        if any(h.mig for h in holders):
            for h in holders:
                jobs[h.job_id].methods[device] = "not attributable (MIG instance)"
            continue
        if index not in energy:
            continue
        joules, method = energy[index]
        if len(holders) == 1 and holders[0].milli >= 1000:
            jobs[holders[0].job_id].gpu_j += joules
            jobs[holders[0].job_id].methods[device] = method
            continue
        util = {
            h.job_id: sum(p.sm_util_pct or 0.0 for p in processes.get(index, ()) if p.pid in job_pids.get(h.job_id, ()))
            for h in holders
        }
        total = sum(util.values())
        for h in holders:
            if total > 0:
                part, how = util[h.job_id] / total, "shared, split by utilization"
            else:
                part, how = h.milli / sum(x.milli for x in holders), "shared, split by slice"
            jobs[h.job_id].gpu_j += joules * part
            jobs[h.job_id].methods[device] = f"{method}, {how}"
    return jobs


def attribute_cpu(
    host_j: float | None, host_cpu_s: float, job_cpu_s: Mapping[int, float], watts_per_cpu: float
) -> dict[int, tuple[float, str]]:
    """CPU joules per job: RAPL's package energy by share of CPU time, else an estimate."""
    if host_j is not None and host_cpu_s > 0:
        return {job: (host_j * max(0.0, cpu) / host_cpu_s, "rapl") for job, cpu in job_cpu_s.items()}
    how = f"estimate ({watts_per_cpu:g} W per busy CPU, no RAPL)"
    return {job: (max(0.0, cpu) * watts_per_cpu, how) for job, cpu in job_cpu_s.items()}


def totals(energy: JobEnergy, grid_g_per_kwh: float, pue: float) -> dict[str, object]:
    """The ``energy`` object of a job: kWh, CO2e, GPU-hours and methods.

    >>> totals(JobEnergy(gpu_j=3.6e6, cpu_j=0.0, gpu_s=7200.0), 400.0, 1.5)["co2e_kg"]
    0.6
    """
    gpu_kwh, cpu_kwh = energy.gpu_j / JOULES_PER_KWH, energy.cpu_j / JOULES_PER_KWH
    total = gpu_kwh + cpu_kwh
    return {
        "gpu_kwh": round(gpu_kwh, 9),
        "cpu_kwh": round(cpu_kwh, 9),
        "total_kwh": round(total, 9),
        "co2e_kg": round(total * pue * grid_g_per_kwh / 1000, 9),
        "gpu_hours": round(energy.gpu_s / 3600, 6),
        "grid_g_per_kwh": grid_g_per_kwh,
        "pue": pue,
        "methods": dict(sorted(energy.methods.items())),
    }
