"""Multifactor priority: the job's priority, fair share, age, size and time limit, each visible."""

from __future__ import annotations

import math

from tuxai.scheduler.config import SchedulerConfig
from tuxai.scheduler.snapshot import Job, Snapshot

MAX_JOB_PRIORITY = 100
_REFERENCE_GPUS = 8.0


def time_limit(job: Job, config: SchedulerConfig) -> float:
    """The job's time limit, or the configured default."""
    return min(job.time_limit_s or config.default_time_limit_s, config.max_time_limit_s)


def fairshare(user: str, usage: dict[str, float], users: set[str]) -> float:
    """2^(−U/S): U the user's share of all decayed usage, S an equal share among active users."""
    total = sum(usage.values())
    if total <= 0:
        return 1.0
    share = 1.0 / max(1, len(users | set(usage)))
    return float(2.0 ** (-(usage.get(user, 0.0) / total) / share))


def factors(job: Job, snapshot: Snapshot, users: set[str]) -> dict[str, float]:
    """Each factor in [0, 1]."""
    config = snapshot.config
    limit = time_limit(job, config)
    return {
        "priority": max(0, min(job.priority, MAX_JOB_PRIORITY)) / MAX_JOB_PRIORITY,
        "fairshare": fairshare(job.user, snapshot.usage, users),
        "age": min(1.0, max(0.0, snapshot.now - job.submitted_at) / config.max_age_s),
        "size": 1.0 - min(1.0, job.request.gpu_equivalents / _REFERENCE_GPUS),
        "short": 1.0 - min(1.0, math.log1p(limit) / math.log1p(config.max_time_limit_s)),
    }


def priority(job: Job, snapshot: Snapshot, users: set[str]) -> tuple[float, dict[str, float]]:
    """The weighted sum and, for ``why is my job waiting?``, every factor and its weighted term."""
    config = snapshot.config
    values = factors(job, snapshot, users)
    weights = {
        "priority": config.weight_priority,
        "fairshare": config.weight_fairshare,
        "age": config.weight_age,
        "size": config.weight_size,
        "short": config.weight_short,
    }
    terms = {name: weights[name] * value for name, value in values.items()}
    explanation = {
        **{f"{k}_factor": round(v, 4) for k, v in values.items()},
        **{k: round(v, 2) for k, v in terms.items()},
    }
    return sum(terms.values()), explanation


def queue_order(snapshot: Snapshot) -> list[tuple[Job, float, dict[str, float]]]:
    """Pending jobs, highest priority first; ties: earliest submitted, then id."""
    users = {j.user for j in snapshot.pending} | {r.job.user for r in snapshot.running}
    scored = [(job, *priority(job, snapshot, users)) for job in snapshot.pending]
    scored.sort(key=lambda item: (-item[1], item[0].submitted_at, item[0].id))
    return scored
