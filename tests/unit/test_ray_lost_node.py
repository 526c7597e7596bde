"""A gang whose node is lost (issue 15): the job fails with the node's loss as its reason, or runs again
when it asked for retries (``--retries``), like any failure that is not the job's own doing."""

from __future__ import annotations

from tuxai.daemon.outcome import classify
from tuxai.executor.attempt import Observed, Seen
from tuxai.executor.gang_status import Verdict, gang_state
from tuxai.executor.rundir import Phase, Status
from tuxai.model.job import JobRecord, JobState
from tuxai.model.jobfile import spec_from_dict

LOST = "node 127.0.0.4 (rank 1) was lost while the gang ran: the gang was stopped"


def _gang(retries: int) -> JobRecord:
    spec = spec_from_dict({"command": ["true"], "nodes": 2, "gpus_per_node": 1, "retries": retries}, "t")
    return JobRecord(id=7, spec=spec, user="ada", uid=1000, gid=1000, state=JobState.RUNNING, submitted_at=0.0)


def _lost_gang() -> Status:
    """Rank 0 stopped by the teardown, rank 1's node gone: the gang's status."""
    stopped = Status(Phase.EXITED, 1, exit_code=-15, signal=15, stop_reason=None, ended_at=50.0)
    state = gang_state([Observed(Seen.EXITED, stopped), Observed(Seen.LOST, None)], ["127.0.0.3", "127.0.0.4"], 60.0)
    assert state.verdict is Verdict.ENDED and state.status is not None
    return state.status


def test_E15_a_lost_node_fails_a_job_that_asked_no_retries_with_the_loss_as_reason() -> None:
    outcome = classify(_gang(retries=0), _lost_gang(), 60.0)
    assert (outcome.state, outcome.reason) == (JobState.FAILED, LOST)


def test_E15_a_lost_node_requeues_a_job_that_asked_for_retries() -> None:
    outcome = classify(_gang(retries=2), _lost_gang(), 60.0)
    assert outcome.state is JobState.REQUEUED
    assert outcome.reason == f"{LOST}; retry 1 of 2 after 5 s"
    assert outcome.fields["failures"] == 1 and outcome.fields["eligible_at"] == 65.0


def test_a_rank_that_cannot_start_is_still_not_retried() -> None:
    refused = Status(Phase.EXITED, 0, ended_at=60.0, error="job 7 runs as uid 1000 and this shim as uid 1001: refused")
    assert classify(_gang(retries=2), refused, 60.0).state is JobState.FAILED  # the same again would fail again
