"""A job's state as English, the one way every command says it: ``cancelling (by root)`` for a
running job asked to stop (never ``running (cancelling (by root))``), ``cancelled by ada`` (never
``cancelled (cancelled by ada)``), ``pending (held)``."""

from __future__ import annotations

from tuxai.model.job import JobState

# How the daemon words a running job it has asked to stop (daemon/core.py): the stop is its state now;
# and an attempt a cluster engine still keeps queued ("queued in Slurm (job 42): …", daemon/slurm.py).
STOPPING = ("cancelling", "requeueing", "preempting", "queued")


def stopping(state: JobState, reason: str) -> bool:
    """Whether a running job is on its way out (a stop was asked: SIGTERM, its grace, SIGKILL)."""
    return state is JobState.RUNNING and reason.startswith(STOPPING)


def state_words(state: JobState, reason: str) -> str:
    """The state with its reason, as a sentence would say it.

    >>> state_words(JobState.RUNNING, "cancelling (by root)")
    'cancelling (by root)'
    >>> state_words(JobState.CANCELLED, "cancelled by ada")
    'cancelled by ada'
    >>> state_words(JobState.PENDING, "held")
    'pending (held)'
    """
    if stopping(state, reason) or reason.startswith(state.value):
        return reason
    return state.value + (f" ({reason})" if reason else "")


def state_word(state: JobState, reason: str) -> str:
    """One word for a STATE column: ``cancelling`` for a running job asked to stop, else the state."""
    return reason.split()[0].rstrip(":") if stopping(state, reason) else state.value
