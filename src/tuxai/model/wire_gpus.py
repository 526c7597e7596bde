"""The wire types of the machine's GPUs (``model/wire.py`` has the jobs'; one JSON form for both).

GpuView, GpuHolder, MigInstance, OutsideProcess   GET /v1/gpus (``tuxai gpus``)
LiveView, LiveGpu, LiveProcess, LiveUsage         GET /v1/telemetry (``tuxai top``)
LiveRank, LiveRankGpu                             (a cluster job's ranks, each sampled on its node)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuHolder:
    """A running job on a GPU: ``share`` of it (1.0 whole), its MIG instance if one, a slice's GPU memory cap."""

    job: int
    user: str
    name: str  # "" where the caller may not see it (``--private-queue``)
    share: float
    mig: str | None
    memory_bytes: int | None = None  # a slice's cap (``--gpu-mem``, else its share of the memory)


@dataclass(frozen=True)
class MigInstance:
    """One MIG instance of a GPU: its place on the GPU, profile, UUID (holders name it) and memory."""

    index: int
    profile: str | None
    uuid: str | None
    memory_total_bytes: int | None


@dataclass(frozen=True)
class OutsideProcess:
    """A compute process on a GPU that tuxai did not start: its pid, user ("" unknown), GPU memory,
    and the MIG instance it runs on (None: the GPU as a whole)."""

    pid: int
    user: str
    memory_bytes: int | None
    mig_index: int | None = None


@dataclass(frozen=True)
class GpuView:
    """One GPU of the machine, who holds it, its MIG instances, and what runs on it outside tuxai."""

    index: int
    uuid: str | None
    name: str
    memory_total_bytes: int | None
    mig: tuple[str | None, ...]  # the profiles of its MIG instances (None: unknown)
    holders: tuple[GpuHolder, ...]
    mig_instances: tuple[MigInstance, ...] = ()
    outside: tuple[OutsideProcess, ...] = ()  # busy outside tuxai: kept off unless --allow-foreign-gpu-use


@dataclass(frozen=True)
class LiveProcess:
    """A process on a GPU: its GPU memory and share of the SMs (None: unknown)."""

    pid: int
    memory_bytes: int | None
    sm_util_pct: float | None


@dataclass(frozen=True)
class LiveGpu:
    """One GPU's latest sample (``energy_j``: its cumulative counter where it has one) and holders."""

    index: int
    uuid: str | None
    at: float
    util_pct: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    power_w: float | None
    power_limit_w: float | None
    energy_j: float | None
    temperature_c: float | None
    sm_clock_mhz: int | None
    memory_clock_mhz: int | None
    throttle_reasons: int
    ecc_uncorrected: int | None
    processes: tuple[LiveProcess, ...]
    name: str
    holders: tuple[GpuHolder, ...]


@dataclass(frozen=True)
class LiveUsage:
    """A running job's counters: cumulative CPU seconds and I/O bytes, memory now, its processes."""

    job_id: int
    at: float
    cpu_s: float
    memory_bytes: int
    read_bytes: int | None  # None: another user's job (/proc/PID/io is its owner's, as is the log)
    write_bytes: int | None
    pids: tuple[int, ...]
    log_bytes: int | None


@dataclass(frozen=True)
class LiveRankGpu:
    """One GPU of a cluster rank, as its node sampled it."""

    uuid: str | None
    util_pct: float | None
    memory_used_bytes: int | None
    power_w: float | None


@dataclass(frozen=True)
class LiveRank:
    """One rank of a cluster job, sampled on its node (``node``: its address)."""

    rank: int
    node: str
    at: float
    cpu_s: float
    memory_bytes: int
    gpus: tuple[LiveRankGpu, ...]


@dataclass(frozen=True)
class LiveView:
    """What ``tuxai top`` shows: every GPU now, and the usage and flags of the jobs the caller may see."""

    sampler: str  # nvml, amd-sysfs, simulated, none
    cpu_energy: str  # rapl, estimate, none
    cpu_energy_problem: str
    gpus: tuple[LiveGpu, ...]
    usage: Mapping[int, LiveUsage]  # by job id
    flags: Mapping[int, tuple[str, ...]]  # by job id: idle, hung
    ranks: Mapping[int, tuple[LiveRank, ...]] = field(default_factory=dict)  # by job id: a cluster job's ranks
