"""A Slurm attempt runs at most once (executor.slurm): the claim between start and abandon, a stop
before the start, sbatch's refusal. Real files; Slurm's commands are stand-in programs on PATH
that record what they were given (the Slurm tier, tests/slurm, runs the real ones)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tuxai.executor import slurm_node
from tuxai.executor.attempt import Seen
from tuxai.executor.rundir import Launch, read_stop
from tuxai.executor.slurm import SlurmExecutor, job_name, parse_handle, slurm_id
from tuxai.model.job import JobSpec, StopReason


@pytest.fixture
def slurm_bin(tmp_path: Path) -> Path:
    """sbatch (records its arguments and script, answers 77 or, with ``refuse``, an error) and squeue
    (``squeue.json`` when the test wrote one, else no jobs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/sbatch.calls; cat >> {tmp_path}/sbatch.calls\n'
        f"if [ -e {tmp_path}/refuse ]; then echo 'sbatch: error: Batch job submission failed: Invalid account' >&2;"
        " exit 1; fi\necho 77\n"
    )
    (bin_dir / "squeue").write_text(f"#!/bin/sh\ncat {tmp_path}/squeue.json 2>/dev/null || echo '{{\"jobs\": []}}'\n")
    (bin_dir / "scancel").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/scancel.calls\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def _prepared(tmp_path: Path, slurm_bin: Path) -> tuple[SlurmExecutor, str]:
    job_dir = tmp_path / "jobs" / "7"
    job_dir.mkdir(parents=True)
    executor = SlurmExecutor(lambda _: JobSpec(("true",)), env={"PATH": f"{slurm_bin}:/usr/bin:/bin"})
    launch = Launch(7, 1, ("true",), {}, "/", str(job_dir / "output.log"), job_dir=str(job_dir))
    return executor, executor.prepare(launch)


def _calls(tmp_path: Path) -> str:
    path = tmp_path / "sbatch.calls"
    return path.read_text() if path.exists() else ""


def test_an_attempt_given_up_is_never_submitted(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    assert executor.observe(handle).seen is Seen.NOT_STARTED
    assert executor.abandon(handle) and executor.abandon(handle)  # the daemon's claim won, and stays
    executor.start(handle)  # a late start: nothing
    assert _calls(tmp_path) == "" and slurm_id(parse_handle(handle)) is None


def test_a_started_attempt_is_submitted_once_and_cannot_be_given_up(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.start(handle)
    executor.start(handle)
    calls = _calls(tmp_path)
    assert calls.count("--parsable") == 1 and f"--job-name={job_name(parse_handle(handle))}" in calls
    assert "-m tuxai.executor.slurm_node" in calls  # the batch script came on stdin
    assert slurm_id(parse_handle(handle)) == 77
    assert not executor.abandon(handle)
    assert executor.observe(handle).seen is Seen.LOST  # claimed, and squeue lists no job 77


def test_a_stop_before_the_start_wins(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.stop(handle, StopReason.CANCEL)
    executor.start(handle)
    observed = executor.observe(handle)
    assert _calls(tmp_path) == ""
    assert observed.seen is Seen.EXITED and observed.status is not None
    assert observed.status.stop_reason is StopReason.CANCEL
    assert json.loads((parse_handle(handle) / "stop.json").read_text()) == {"reason": "cancel"}


def test_sbatchs_refusal_is_the_attempts_end_in_one_line(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    (tmp_path / "refuse").touch()
    executor.start(handle)
    observed = executor.observe(handle)
    assert observed.seen is Seen.EXITED and observed.status is not None
    assert observed.status.error == "Slurm refused it: Batch job submission failed: Invalid account"


def _squeue(tmp_path: Path, **job: object) -> None:
    """What the stand-in squeue lists from now on: one job."""
    (tmp_path / "squeue.json").write_text(json.dumps({"jobs": [{"job_state": "RUNNING", **job}]}))


def test_S2_a_node_link_never_makes_root_write_stop_json(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.start(handle)
    run_dir, victim = parse_handle(handle), tmp_path / "victim"
    victim.mkdir()
    (run_dir / "node-0" / "run-0").symlink_to(victim)  # node-0 is the user's: its run-<n> whatever they like
    executor.stop(handle, StopReason.CANCEL)
    assert list(victim.iterdir()) == []  # root wrote nothing through the link
    node_run = run_dir / "node-0" / "run-1"  # what the node runner makes, as the user
    node_run.mkdir()
    slurm_node.link_stop(node_run)
    assert read_stop(node_run) is StopReason.CANCEL  # the node's shim still reads the stop asked


def test_S4_a_users_malformed_node_files_are_no_status_never_an_error(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.start(handle)  # Slurm's job 77, which squeue no longer lists: judged from the nodes' files
    node = parse_handle(handle) / "node-0"
    for name in ("run-x", "run-", "run-1x"):
        (node / name).mkdir()
    (node / "run-0").mkdir()
    forged = {"phase": "exited", "shim_pid": 1, "ended_at": "x", "exit_code": "0", "signal": True}
    forged |= {"oom_killed": "yes", "error": 5, "wall_s": float("nan"), "stop_reason": ["preempt"]}
    (node / "run-0" / "status.json").write_text(json.dumps(forged))
    observed = executor.observe(handle)
    assert observed.seen is Seen.EXITED and observed.status is not None
    status = observed.status
    assert isinstance(status.ended_at, float) and (status.exit_code, status.signal, status.wall_s) == (None, None, None)
    assert (status.oom_killed, status.error, status.stop_reason) == (False, "", None)
    (node / "run-0" / "status.json").write_text("[" * 60000)  # deeper than json's recursion
    assert executor.observe(handle).seen is Seen.LOST


def test_S7_the_end_is_slurms_clock_not_the_users_file(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.start(handle)
    (parse_handle(handle) / "node-0" / "run-0").mkdir()
    forged = {"phase": "exited", "shim_pid": 1, "started_at": 1.0, "ended_at": 1.0, "exit_code": 0}
    (parse_handle(handle) / "node-0" / "run-0" / "status.json").write_text(json.dumps(forged))
    for end_time in ({"set": True, "infinite": False, "number": 1_700_000_000}, 1_700_000_000):  # 23.02 on, 22.05
        _squeue(tmp_path, job_id=77, job_state="COMPLETED", end_time=end_time, name="x", user_id=os.getuid())
        observed = SlurmExecutor(executor.spec_of, env=executor.env).observe(handle)
        assert observed.status is not None and observed.status.ended_at == 1_700_000_000.0


def test_S8_a_job_is_adopted_by_name_only_from_the_attempts_user(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    run_dir = parse_handle(handle)
    (run_dir / "claimed").write_text("start")  # the daemon died between the claim and Slurm's id
    _squeue(tmp_path, job_id=99, name=job_name(run_dir), user_id=os.getuid() + 4242)  # somebody else's job
    assert executor.observe(handle).seen is Seen.LOST and slurm_id(run_dir) is None
    _squeue(tmp_path, job_id=98, name=job_name(run_dir), user_id=os.getuid())
    adopted = SlurmExecutor(executor.spec_of, env=executor.env)  # a fresh squeue
    assert adopted.observe(handle).seen is Seen.ALIVE and slurm_id(run_dir) == 98
