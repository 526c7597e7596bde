"""What one look at the machine gives: per-GPU samples, per-job usage, CPU energy."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuProcess:
    """A process on a GPU: its pid, the GPU memory it holds, its share of the SMs (None: unknown);
    ``user``: who a simulated inventory says runs it (a real one's is read from /proc)."""

    pid: int
    memory_bytes: int | None = None
    sm_util_pct: float | None = None
    user: str | None = None
    gpu_instance_id: int | None = None  # the MIG GPU instance it runs on (None: the whole GPU)


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one instant. ``energy_j``: the cumulative counter (Volta and newer), else None."""

    index: int
    uuid: str | None
    at: float
    util_pct: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    energy_j: float | None = None
    temperature_c: float | None = None
    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    throttle_reasons: int = 0
    ecc_uncorrected: int | None = None
    processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True)
class JobUsage:
    """A running job's counters at one instant (cumulative CPU seconds and I/O bytes)."""

    job_id: int
    at: float
    cpu_s: float
    memory_bytes: int
    read_bytes: int = 0
    write_bytes: int = 0
    pids: frozenset[int] = field(default_factory=frozenset)
    log_bytes: int = 0
