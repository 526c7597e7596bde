"""A Slurm attempt runs at most once (executor.slurm): the claim between start and abandon, a stop
before the start, sbatch's refusal. Real files; Slurm's commands are stand-in programs on PATH
that record what they were given (the Slurm tier, tests/slurm, runs the real ones)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuxai.executor.attempt import Seen
from tuxai.executor.rundir import Launch
from tuxai.executor.slurm import SlurmExecutor, job_name, parse_handle, slurm_id
from tuxai.model.job import JobSpec, StopReason


@pytest.fixture
def slurm_bin(tmp_path: Path) -> Path:
    """sbatch (records its arguments and script, answers 77 or, with ``refuse``, an error) and an empty squeue."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/sbatch.calls; cat >> {tmp_path}/sbatch.calls\n'
        f"if [ -e {tmp_path}/refuse ]; then echo 'sbatch: error: Batch job submission failed: Invalid account' >&2;"
        " exit 1; fi\necho 77\n"
    )
    (bin_dir / "squeue").write_text("#!/bin/sh\necho '{\"jobs\": []}'\n")
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
