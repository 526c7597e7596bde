"""A Slurm attempt's one status from its nodes' and Slurm's last word (executor.slurm: pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.executor.rundir import Phase, Status
from tuxai.executor.slurm import gang_status, handle_of, job_name, parse_handle
from tuxai.model.job import StopReason
from tuxai.model.slurm import SlurmJob


def _exited(code: int | None = 0, ended: float = 10.0, **fields: object) -> Status:
    return Status(Phase.EXITED, 1, exit_code=code, ended_at=ended, **fields)  # type: ignore[arg-type]


def test_every_node_succeeded_is_rank_0s_status_ended_with_the_last() -> None:
    status = gang_status([_exited(0, 10.0, wall_s=3.0), _exited(0, 12.0)], 2, SlurmJob(7, "COMPLETED", "None"), None)
    assert (status.exit_code, status.ended_at, status.wall_s, status.error) == (0, 12.0, 3.0, "")


def test_the_first_node_that_failed_decides() -> None:
    status = gang_status([_exited(0, 9.0), _exited(3, 11.0), _exited(None, 10.5, signal=9)], 3, None, None)
    assert (status.exit_code, status.signal) == (None, 9)


def test_nodes_killed_before_they_wrote_leave_slurms_word() -> None:
    status = gang_status([_exited(0)], 2, SlurmJob(7, "FAILED", "NonZeroExitCode", exit_code=1), None)
    assert status.error == "Slurm ended it FAILED (NonZeroExitCode): 1 of 2 node(s) recorded an exit"
    timed = gang_status([], 2, SlurmJob(7, "TIMEOUT", "TimeLimit"), None)
    assert timed.timed_out and not timed.error


def test_a_job_cancelled_while_queued_is_the_stop_asked() -> None:
    status = gang_status([], 1, SlurmJob(7, "CANCELLED", "None"), StopReason.CANCEL)
    assert (status.stop_reason, status.error, status.phase) == (StopReason.CANCEL, "", Phase.EXITED)


def test_handles_name_the_run_directory_and_jobs_are_named_apart() -> None:
    handle = handle_of(Path("/var/lib/tuxai/jobs/7/run-1"))
    assert handle == "slurm:/var/lib/tuxai/jobs/7/run-1"
    assert parse_handle(handle) == Path("/var/lib/tuxai/jobs/7/run-1")
    for bad in ("/var/lib/tuxai/jobs/7/run-1", "slurm:", "slurm:relative/run-1"):
        with pytest.raises(ValueError):
            parse_handle(bad)  # type: ignore[arg-type]
    assert job_name(Path("/a/jobs/7/run-1")).startswith("tuxai-7.1-")
    assert job_name(Path("/a/jobs/7/run-1")) != job_name(Path("/b/jobs/7/run-1"))  # two daemons' job 7
