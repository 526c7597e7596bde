"""Idle and hung jobs, from what they did over time. Pure: ``Watch.update`` takes ``now``.

- idle: holds GPUs and none of them was above ``busy_pct`` utilization for ``idle_after_s``;
- hung: no progress — no CPU time, no GPU utilization, no log output — for ``hung_after_s``,
  or high utilization at near-idle power (a collective spinning on a peer that is gone)
  for as long.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DetectionConfig:
    """Thresholds (seconds, percent)."""

    idle_after_s: float = 600.0
    hung_after_s: float = 1800.0
    busy_pct: float = 5.0
    spin_util_pct: float = 90.0
    spin_power_fraction: float = 0.3  # of the power limit


@dataclass
class Watch:
    """One running job's last signs of life."""

    since: float
    holds_gpus: bool
    last_gpu_busy: float = 0.0
    last_progress: float = 0.0
    last_not_spinning: float = 0.0
    cpu_s: float | None = None
    log_bytes: int | None = None

    def __post_init__(self) -> None:
        self.last_gpu_busy = self.last_progress = self.last_not_spinning = self.since

    def update(
        self,
        now: float,
        cpu_s: float,
        log_bytes: int,
        gpu_util: list[float],
        gpu_power_fraction: list[float | None],
        config: DetectionConfig,
    ) -> set[str]:
        """Record what the job did since the last look; the flags that hold now."""
        busy = any(u >= config.busy_pct for u in gpu_util)
        if busy:
            self.last_gpu_busy = now
        cpu_moved = self.cpu_s is not None and cpu_s - self.cpu_s > 0.01
        log_moved = self.log_bytes is not None and log_bytes != self.log_bytes
        if cpu_moved or log_moved or busy:
            self.last_progress = now
        self.cpu_s, self.log_bytes = cpu_s, log_bytes
        spinning = any(
            u >= config.spin_util_pct and p is not None and p < config.spin_power_fraction
            for u, p in zip(gpu_util, gpu_power_fraction, strict=False)
        )
        if not spinning:
            self.last_not_spinning = now
        flags = set()
        if self.holds_gpus and now - self.last_gpu_busy >= config.idle_after_s:
            flags.add("idle")
        if now - self.last_progress >= config.hung_after_s or now - self.last_not_spinning >= config.hung_after_s:
            flags.add("hung")
        return flags
