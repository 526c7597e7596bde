"""What ``decide`` answers: start, preempt, reserve, reject — each with its explanation."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuxai.model.resources import Allocation


@dataclass(frozen=True)
class Start:
    """Start ``job_id`` now on ``allocation`` (a gang: its first node, the others in ``allocation.more``);
    ``backfilled`` when it jumped the queue."""

    job_id: str
    allocation: Allocation
    explanation: dict[str, object] = field(default_factory=dict)
    backfilled: bool = False


@dataclass(frozen=True)
class Preempt:
    """Stop ``job_id`` (requeued, with its grace period) to make room for ``for_job``."""

    job_id: str
    for_job: str
    reason: str


@dataclass(frozen=True)
class Reserve:
    """``job_id`` heads the queue and will start at ``at`` (seconds) at the latest estimate."""

    job_id: str
    at: float
    explanation: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    """``job_id`` can never run on these nodes; ``reason`` says why and what they have."""

    job_id: str
    reason: str


@dataclass(frozen=True)
class Limited:
    """``job_id`` waits for a quota (``scheduler.quotas``); ``reason`` names the cap with its numbers."""

    job_id: str
    reason: str


Decision = Start | Preempt | Reserve | Reject | Limited
