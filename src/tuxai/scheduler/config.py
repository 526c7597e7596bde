"""Scheduler configuration: weights, fair-share half-life, backfill and preemption, in one file.

``parse_scheduler_config(text)`` is pure; the daemon or the CLI reads the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tuxai.errors import ConfigError
from tuxai.model.mapping import load_mapping, read_dataclass


@dataclass(frozen=True)
class SchedulerConfig:
    """Every knob of the policy, with the defaults a shared box wants.

    Priority = Σ weight × factor, each factor in [0, 1]:
    ``priority`` (the job's own, 0–100 → 0–1), ``fairshare`` (2^(−usage/share),
    usage decayed with ``half_life_s``), ``age`` (waited ÷ ``max_age_s``),
    ``size`` (fewer GPUs → higher; more GPUs → higher with ``favor_small: false``,
    Slurm's PriorityFavorSmall), ``short`` (shorter time limit → higher).
    """

    weight_priority: float = 1000.0
    weight_fairshare: float = 1000.0
    weight_age: float = 500.0
    weight_size: float = 100.0
    weight_short: float = 500.0
    half_life_s: float = 7 * 24 * 3600.0
    max_age_s: float = 24 * 3600.0
    default_time_limit_s: float = 24 * 3600.0
    max_time_limit_s: float = 30 * 24 * 3600.0
    favor_small: bool = True
    starvation_s: float = 0.0  # > 0: jobs waiting this long go first, oldest first (anti-starvation)
    protect_gpus: int = 0  # > 0: jobs asking this many GPUs or more go first, oldest first (no large-job starvation)
    backfill: bool = True
    reservations: int = 1  # blocked jobs that get a reservation backfill must respect (1 = EASY)
    preemption: bool = True
    preempt_min_priority_gap: int = 1  # a job preempts only jobs at least this much lower in job priority


FIFO = SchedulerConfig(
    weight_priority=0, weight_fairshare=0, weight_age=1, weight_size=0, weight_short=0, backfill=False, preemption=False
)
BACKFILL = replace(FIFO, backfill=True)


def parse_scheduler_config(text: str, origin: str = "scheduler config") -> SchedulerConfig:
    """YAML ``key: value`` lines → ``SchedulerConfig`` (unknown keys and bad values are errors).

    Raises:
        ConfigError: malformed YAML, an unknown key, or a value of the wrong type or sign.
    """
    reader = load_mapping(text, origin, ConfigError, hint="docs/scheduler.md lists the settings")
    config = read_dataclass(SchedulerConfig, reader, minimum=0)  # the one typed reader: every number ≥ 0
    if config.half_life_s <= 0 or config.max_age_s <= 0:
        raise ConfigError(f"{origin}: half_life_s and max_age_s must be positive", hint="e.g. 604800 for a week")
    return config
