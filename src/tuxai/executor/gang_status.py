"""A gang's state from its ranks' states: still running, to be torn down, or ended with one outcome. Pure.

Every node of a gang runs its own shim; the gang ends as one. The first rank that fails on its own
(a non-zero exit, a signal, an error; not a stop tuxai asked for) ends the gang: the others are
stopped and the gang's outcome is that rank's. A rank whose node is gone ends the gang with the
node's loss as its reason. A gang where every rank exited cleanly succeeded (rank 0's status,
ended when the last rank ended).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from tuxai.executor.attempt import Observed, Seen
from tuxai.executor.rundir import Phase, Status


class Verdict(StrEnum):
    """What the executor does with the gang now."""

    RUNNING = "running"  # nothing ended badly: wait
    TEAR_DOWN = "tear-down"  # a rank failed or a node is gone: stop the others
    ENDED = "ended"  # every rank is over: ``status`` is the gang's


@dataclass(frozen=True)
class GangState:
    """The verdict, the ranks still to stop (``TEAR_DOWN``), and the gang's status (``ENDED``)."""

    verdict: Verdict
    stop_ranks: tuple[int, ...] = ()
    status: Status | None = None


def failed(status: Status) -> bool:
    """The rank ended badly on its own (not by a stop tuxai asked for).

    >>> failed(Status(Phase.EXITED, 1, exit_code=1)), failed(Status(Phase.EXITED, 1, exit_code=0))
    (True, False)
    """
    if status.stop_reason is not None:
        return False
    return bool(status.error) or status.signal is not None or status.oom_killed or status.exit_code not in (0, None)


def lost_status(rank: int, where: str, now: float) -> Status:
    """The gang's status when the node of ``rank`` (at ``where``) is gone: an error naming the node."""
    error = f"node {where} (rank {rank}) was lost while the gang ran: the gang was stopped"
    return Status(Phase.EXITED, 0, ended_at=now, error=error, node_lost=True)


def rank_end(observed: Observed) -> str:
    """One rank's end in words, for `tuxai show`.

    >>> rank_end(Observed(Seen.EXITED, Status(Phase.EXITED, 1, exit_code=1))), rank_end(Observed(Seen.LOST, None))
    ('exit 1', 'its node was lost')
    """
    status = observed.status
    if observed.seen in (Seen.LOST, Seen.VANISHED):
        return "its node was lost"
    if status is None:
        return "running"
    if status.error:
        return f"error: {status.error}"
    words = f"signal {status.signal}" if status.signal is not None else f"exit {status.exit_code}"
    words += ", out of memory" if status.oom_killed else ""
    return words + (f" (stopped: {status.stop_reason})" if status.stop_reason is not None else "")


def gang_state(ranks: Sequence[Observed], nodes: Sequence[str], now: float) -> GangState:
    """The gang's state from each rank's ``Observed`` (in rank order; ``nodes``: each rank's address).

    A rank LOST or VANISHED is a lost node; NOT_STARTED counts as running (its shim is on its way).
    """
    exited = {r: o.status for r, o in enumerate(ranks) if o.seen is Seen.EXITED and o.status is not None}
    gone = [r for r, o in enumerate(ranks) if o.seen in (Seen.LOST, Seen.VANISHED)]
    live = tuple(r for r in range(len(ranks)) if r not in exited and r not in gone)
    failures = sorted((s.ended_at or now, r) for r, s in exited.items() if failed(s))
    ends = tuple(rank_end(o) for o in ranks)
    if gone:
        first = gone[0]
        cause = replace(lost_status(first, nodes[first] if first < len(nodes) else "?", now), rank_exits=ends)
        return GangState(Verdict.TEAR_DOWN, live, None) if live else GangState(Verdict.ENDED, (), cause)
    if live:
        return GangState(Verdict.TEAR_DOWN, live) if failures else GangState(Verdict.RUNNING)
    chosen = exited[failures[0][1]] if failures else exited[0]
    last = max((s.ended_at or 0.0 for s in exited.values()), default=0.0)
    ended_at = max(last, chosen.ended_at or 0.0) or None
    return GangState(Verdict.ENDED, (), replace(chosen, ended_at=ended_at, rank_exits=ends))
