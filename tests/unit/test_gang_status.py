"""A gang's state from its ranks' (executor.gang_status): pure, the rules the Ray executor acts on."""

from __future__ import annotations

from tuxai.executor.attempt import Observed, Seen
from tuxai.executor.gang_status import Verdict, gang_state
from tuxai.executor.rundir import Phase, Status
from tuxai.model.job import StopReason

NODES = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
ALIVE = Observed(Seen.ALIVE, Status(Phase.RUNNING, 10))


def ended(code: int | None, at: float, stop: StopReason | None = None, signal: int | None = None) -> Observed:
    return Observed(Seen.EXITED, Status(Phase.EXITED, 10, ended_at=at, exit_code=code, stop_reason=stop, signal=signal))


def test_running_while_no_rank_failed() -> None:
    assert gang_state([ALIVE, ended(0, 5.0), Observed(Seen.NOT_STARTED, None)], NODES, 9.0).verdict is Verdict.RUNNING


def test_E15_a_failed_rank_tears_down_the_others_and_its_status_is_the_gangs() -> None:
    state = gang_state([ALIVE, ended(1, 5.0), ALIVE], NODES, 9.0)
    assert state.verdict is Verdict.TEAR_DOWN and state.stop_ranks == (0, 2)
    stopped = ended(None, 7.0, StopReason.SHUTDOWN, signal=15)
    final = gang_state([stopped, ended(1, 5.0), stopped], NODES, 9.0)
    assert final.verdict is Verdict.ENDED and final.status is not None
    assert final.status.exit_code == 1 and final.status.stop_reason is None
    assert final.status.ended_at == 7.0  # the gang ended with its last rank


def test_the_first_failure_in_time_is_the_gangs() -> None:
    final = gang_state([ended(2, 6.0), ended(1, 5.0), ended(None, 5.5, signal=9)], NODES, 9.0)
    assert final.status is not None and final.status.exit_code == 1


def test_E15_a_lost_node_stops_the_others_then_ends_the_gang_naming_the_node() -> None:
    lost = Observed(Seen.LOST, None)
    state = gang_state([ALIVE, lost, ALIVE], NODES, 9.0)
    assert state.verdict is Verdict.TEAR_DOWN and state.stop_ranks == (0, 2)
    stopped = ended(None, 9.5, StopReason.SHUTDOWN, signal=15)
    final = gang_state([stopped, lost, stopped], NODES, 10.0)
    assert final.verdict is Verdict.ENDED and final.status is not None
    assert final.status.error == "node 10.0.0.2 (rank 1) was lost while the gang ran: the gang was stopped"


def test_every_rank_clean_is_rank_zeros_status_or_the_stop_asked() -> None:
    final = gang_state([ended(0, 3.0), ended(0, 4.0)], NODES[:2], 9.0)
    assert final.status is not None and final.status.exit_code == 0 and final.status.ended_at == 4.0
    cancelled = gang_state([ended(None, 3.0, StopReason.CANCEL, 15), ended(None, 3.0, StopReason.CANCEL, 15)], NODES, 9)
    assert cancelled.status is not None and cancelled.status.stop_reason is StopReason.CANCEL
