"""Multifactor priority: the job's priority, fair share, age, size and time limit, each visible."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuxai.scheduler.config import SchedulerConfig
from tuxai.scheduler.snapshot import Job, Snapshot

MAX_JOB_PRIORITY = 100
_REFERENCE_GPUS = 8.0
FACTORS = ("priority", "fairshare", "age", "size", "short")


def time_limit(job: Job, config: SchedulerConfig) -> float:
    """The job's time limit, or the configured default."""
    return min(job.time_limit_s or config.default_time_limit_s, config.max_time_limit_s)


def fairshare(user: str, usage: dict[str, float], users: set[str]) -> float:
    """2^(−U/S): U the user's share of all decayed usage, S an equal share among active users."""
    return _FairShare(usage, users).factor(user)


class _FairShare:
    """Totals computed once per snapshot, factors per user on demand."""

    def __init__(self, usage: dict[str, float], users: set[str]) -> None:
        self.usage = usage
        self.total = sum(usage.values())
        self.share = 1.0 / max(1, len(users | set(usage)))
        self.cache: dict[str, float] = {}

    def factor(self, user: str) -> float:
        if self.total <= 0:
            return 1.0
        if user not in self.cache:
            self.cache[user] = float(2.0 ** (-(self.usage.get(user, 0.0) / self.total) / self.share))
        return self.cache[user]


@dataclass(slots=True)
class Ranked:
    """A pending job with its priority; ``explain()`` gives every factor and weighted term."""

    job: Job
    score: float
    factors: tuple[float, ...]
    weights: tuple[float, ...]
    starving: bool = False

    def explain(self) -> dict[str, float]:
        """``{"priority_factor": 0.3, …, "priority": 300.0, …}`` for ``why is my job waiting?``."""
        out: dict[str, float] = {}
        for name, value in zip(FACTORS, self.factors, strict=True):
            out[f"{name}_factor"] = round(value, 4)
        for name, value, weight in zip(FACTORS, self.factors, self.weights, strict=True):
            out[name] = round(value * weight, 2)
        if self.starving:
            out["starving"] = 1.0
        return out


def _size(gpus: float, favor_small: bool) -> float:
    share = min(1.0, gpus / _REFERENCE_GPUS)
    return 1.0 - share if favor_small else share


def queue_order(snapshot: Snapshot) -> list[Ranked]:
    """Pending jobs, highest priority first; ties: earliest submitted, then id."""
    config = snapshot.config
    users = {j.user for j in snapshot.pending} | {r.job.user for r in snapshot.running}
    shares = _FairShare(snapshot.usage, users)
    weights = (
        config.weight_priority,
        config.weight_fairshare,
        config.weight_age,
        config.weight_size,
        config.weight_short,
    )
    log_max = math.log1p(config.max_time_limit_s)
    w_priority, w_fairshare, w_age, w_size, w_short = weights
    max_age = config.max_age_s
    ranked = []
    for job in snapshot.pending:
        waited = snapshot.now - job.submitted_at
        values = (
            max(0, min(job.priority, MAX_JOB_PRIORITY)) / MAX_JOB_PRIORITY,
            shares.factor(job.user) if w_fairshare else 1.0,
            min(1.0, max(0.0, waited) / max_age),
            _size(job.request.gpu_equivalents, config.favor_small),
            1.0 - min(1.0, math.log1p(time_limit(job, config)) / log_max),
        )
        score = (
            w_priority * values[0]
            + w_fairshare * values[1]
            + w_age * values[2]
            + w_size * values[3]
            + w_short * values[4]
        )
        starving = (config.starvation_s > 0 and waited >= config.starvation_s) or (
            config.protect_gpus > 0 and job.request.gpu_equivalents >= config.protect_gpus
        )
        ranked.append(Ranked(job, score, values, weights, starving))
    # Starving (or protected large) jobs first, oldest first; then by score.
    ranked.sort(
        key=lambda r: (not r.starving, r.job.submitted_at if r.starving else -r.score, r.job.submitted_at, r.job.id)
    )
    return ranked
