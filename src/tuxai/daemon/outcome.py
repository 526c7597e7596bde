"""How an attempt ended → the job's next state and the reason a person reads. Pure."""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass, field
from typing import Any

from tuxai.executor.rundir import Status
from tuxai.model.job import MAX_REQUEUES, REQUEUE_EXIT_CODE, JobRecord, JobState, StopReason, retry_delay_s
from tuxai.model.units import format_bytes


@dataclass(frozen=True)
class Outcome:
    """The state to move to, why, and the fields to record."""

    state: JobState
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _failed(job: JobRecord, what: str, fields: dict[str, Any], retry: bool = True) -> Outcome:
    """A failure: requeued with backoff while retries remain, else failed."""
    if retry and job.failures < job.spec.retries:
        failures = job.failures + 1
        delay = retry_delay_s(job.spec, failures)
        at = float(fields.get("ended_at") or 0.0) + delay
        reason = f"{what}; retry {failures} of {job.spec.retries} after {delay:g} s"
        return Outcome(JobState.REQUEUED, reason, {**fields, "failures": failures, "eligible_at": at})
    suffix = f" (after {job.spec.retries} retries)" if retry and job.spec.retries else ""
    return Outcome(JobState.FAILED, what + suffix, fields)


def within(value: object, low: float, high: float) -> float:
    """``value`` clamped into [low, high] (``high`` when it is no finite number): a time a user may have written.

    >>> within(5.0, 10.0, 20.0), within(1e300, 10.0, 20.0), within("x", 10.0, 20.0)
    (10.0, 20.0, 20.0)
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return high
    return min(max(float(value), low), high)


def classify(job: JobRecord, status: Status | None, now: float = 0.0) -> Outcome:
    """The attempt's recorded ``status`` (None: the shim died without one, seen at ``now``) → ``Outcome``.

    A stop decides the outcome only when the shim acted on it (``status.stop_reason``): a
    job that ended on its own before a cancel or a preemption reached it keeps its own
    outcome (it finished: its results are whole).
    """
    if status is None:
        what = "the shim died without recording the job's exit (killed, or the machine restarted)"
        return _failed(job, what, {"ended_at": now} if now else {})
    fields: dict[str, Any] = {
        "exit_code": status.exit_code,
        "signal": status.signal,
        "wall_s": status.wall_s,
        "cpu_s": status.cpu_s,
        "max_rss_bytes": status.max_rss_bytes,
        "oom_killed": status.oom_killed,
    }
    if status.rank_exits:
        fields["rank_exits"] = tuple(status.rank_exits)  # a gang's, for `tuxai show`
    if status.started_at is not None:
        fields["started_at"] = status.started_at
    if status.ended_at is not None:
        fields["ended_at"] = status.ended_at
    stop = StopReason.parse(status.stop_reason)
    if stop is StopReason.CANCEL:
        return Outcome(JobState.CANCELLED, "cancelled", fields)
    if stop is StopReason.CANCEL_HUNG:
        return Outcome(JobState.CANCELLED, "cancelled: flagged hung (no progress)", fields)
    if stop is StopReason.REQUEUE:
        return Outcome(JobState.REQUEUED, "requeued: flagged hung (no progress)", fields)
    if stop is StopReason.PREEMPT:
        who = f"job {job.for_job}" if job.for_job else "a higher-priority job"
        if job.spec.requeue:
            return Outcome(JobState.REQUEUED, f"preempted for {who}; requeued", fields)
        return Outcome(JobState.PREEMPTED, f"preempted for {who} (submitted with requeue off)", fields)
    if status.timed_out:
        limit = job.spec.time_limit_s or 0.0
        return Outcome(JobState.TIMEOUT, f"time limit of {_duration(limit)} reached", fields)
    if status.oom_killed:
        memory = job.spec.request.memory_bytes
        what = f"out of memory: killed at the {format_bytes(memory) if memory else 'its'} memory limit"
        what += " (ask for more with --mem)"
        return _failed(job, what, fields, retry=False)
    if status.error:
        return _failed(job, status.error, fields, retry=status.node_lost)  # a lost node: retried, if the job asks
    if status.exit_code == 0:
        return Outcome(JobState.SUCCEEDED, "", fields)
    if status.exit_code == REQUEUE_EXIT_CODE:
        if job.requeues + 1 >= MAX_REQUEUES:
            return Outcome(JobState.FAILED, f"requeued itself {MAX_REQUEUES} times: a loop, not a checkpoint", fields)
        reason = f"exited with {REQUEUE_EXIT_CODE} (checkpoint saved): requeued"
        return Outcome(JobState.REQUEUED, reason, {**fields, "requeues": job.requeues + 1})
    if status.signal is not None:
        what = f"killed by {_signal_name(status.signal)}"
        if stop is StopReason.SHUTDOWN:
            what += " after a SIGTERM from outside tuxai"
        return _failed(job, what, fields)
    return _failed(job, f"exit code {status.exit_code}", fields)
