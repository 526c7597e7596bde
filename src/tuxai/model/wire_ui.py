"""The wire type of the dashboard's login (``POST /v1/ui/login``, ``tuxai ui``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UiLogin:
    """A one-time login: the loopback URL that carries the token, and how long it stays good."""

    url: str
    expires_s: float


@dataclass(frozen=True)
class GpuLine:
    """One GPU's telemetry over a chart's range: the bucket starts and each bucket's mean (None: no sample)."""

    gpu: int
    at: tuple[float, ...]
    util_pct: tuple[float | None, ...]
    memory_used_bytes: tuple[float | None, ...]
    power_w: tuple[float | None, ...]


@dataclass(frozen=True)
class GpuSeries:
    """GPUs' telemetry from ``since`` to ``until``, read from the ``resolution_s`` tier (1, 60 or 3600) in
    buckets of ``bucket_s`` (a multiple of it: a chart holds a bounded number of points)."""

    since: float
    until: float
    resolution_s: int
    bucket_s: int
    lines: tuple[GpuLine, ...]


@dataclass(frozen=True)
class UserUse:
    """One user on the Users page: the fair share's decayed GPU-hours (what the queue's fair-share term
    weighs), the GPUs held now, and the GPU-hours of the jobs that ended in each bucket of the range."""

    user: str
    fair_share_gpu_hours: float
    running_gpus: float
    gpu_hours: tuple[float, ...]  # one a bucket of ``UsersView.starts``


@dataclass(frozen=True)
class UsersView:
    """GPU use per user from ``since`` to ``until`` in buckets of ``bucket_s`` (each bucket's start in
    ``starts``); the fair share's half-life. Root sees every user, a user itself only (as ``/v1/limits``)."""

    since: float
    until: float
    bucket_s: int
    starts: tuple[float, ...]
    half_life_s: float
    users: tuple[UserUse, ...]


@dataclass(frozen=True)
class ModelStats:
    """One model version a served job answered for, from its server's ``/metrics``: requests and failures
    so far, the request rate since the dashboard's previous look (None: first look), latency and queue time
    (mean, and the 95th percentile's bucket bound); the drift of its inputs when the version carries a
    reference (``serving.drift_board``'s gauges)."""

    model: str
    version: str
    requests: int
    failures: int
    rate_per_s: float | None
    latency_mean_s: float | None
    latency_p95_s: float | None
    queue_mean_s: float | None
    queue_p95_s: float | None
    drifted: bool | None = None  # the last closed drift window's verdict (None: no reference, or none closed yet)
    drift_feature: str = ""  # the feature with the highest PSI in that window
    drift_psi: float | None = None  # its PSI
    drift_windows: int = 0  # drift windows closed so far


@dataclass(frozen=True)
class ServedJob:
    """A running job that serves models (``submit --serve``): its endpoint and its models' numbers, or why
    they could not be read (``problem``)."""

    job_id: int
    name: str
    user: str
    endpoint: str
    models: tuple[ModelStats, ...]
    problem: str = ""
