"""The executor seam (``executor.attempt``) as the local backend answers it, on real files and processes.

The daemon hands a ``Launch`` and gets an opaque handle; where the attempt lives, its groups
and what is left of it when its shim is gone are the executor's to find from that handle.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.launch import build_launch
from tuxai.executor.attempt import AttemptHandle, AttemptTaken, Processes, Seen
from tuxai.executor.local import LocalExecutor, cgroup_name
from tuxai.executor.processes import boot_id, start_ticks
from tuxai.executor.rundir import Launch, Phase, Status, read_launch, read_stop, write_status
from tuxai.hardware.cgroups import CgroupSupport
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.job import JobRecord, JobSpec, JobState, StopReason
from tuxai.model.resources import Allocation, Request

REPO = Path(__file__).parent.parent.parent


def _launch(job_dir: Path, attempt: int = 1) -> Launch:
    return Launch(12, attempt, ("true",), {"A": "1"}, "", str(job_dir / "output.log"), job_dir=str(job_dir))


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    path = tmp_path / "jobs" / "12"
    path.mkdir(parents=True)
    return path


def test_prepare_makes_each_attempt_once_and_starts_nothing(tmp_path: Path, job_dir: Path) -> None:
    executor = LocalExecutor(tmp_path)
    handle = executor.prepare(_launch(job_dir))
    run_dir = job_dir / "run-1"
    assert handle == str(run_dir) and read_launch(run_dir) == _launch(job_dir)
    assert run_dir.stat().st_mode & 0o777 == 0o700
    with pytest.raises(AttemptTaken):  # a power cut erased its record: the directory is never reused
        executor.prepare(_launch(job_dir))
    assert executor.prepare(_launch(job_dir, 2)) == str(job_dir / "run-2")
    assert executor.observe(handle).seen is Seen.NOT_STARTED and executor.processes(handle) is None
    executor.stop(handle, StopReason.CANCEL)  # asked before the start: the shim reads it first
    assert read_stop(run_dir) is StopReason.CANCEL
    assert executor.abandon(handle)  # the daemon's claim: a late shim gives it up
    assert not executor.abandon(handle)  # claimed once


def test_a_launch_without_a_job_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no job directory"):
        LocalExecutor(tmp_path).prepare(replace(_launch(tmp_path), job_dir=""))


@pytest.mark.parametrize("path", ["systemd", "cgroupfs v2"])
def test_a_lost_attempts_groups_come_from_its_handle_alone(tmp_path: Path, path: str) -> None:
    """What kill_lost reaps holds every group the launch gave the attempt, with its directory gone."""
    inventory = load_inventory_file(REPO / "examples" / "inventories" / "two-gpu-box.yaml")
    support = CgroupSupport(2, {"unified": "/sys/fs/cgroup/tuxai.slice"}, path=path, systemd_version=252)
    config = DaemonConfig(tmp_path, inventory, cgroups=support, online_cpus=(0, 1))
    spec = JobSpec(command=("python", "train.py"), request=Request(cpus=1, memory_bytes=2**30))
    job = JobRecord(id=12, spec=spec, user="ada", uid=1000, gid=100, state=JobState.PENDING, submitted_at=0.0)
    job_dir = tmp_path / "jobs" / "12.1"  # an earlier store's job 12 had jobs/12
    launch = build_launch(config, job, Allocation("local", (), cpus=(0,)), 3, str(job_dir / "output.log"), {})
    handle = AttemptHandle(str(job_dir / "run-3"))  # never made, or removed since: only the handle is left
    groups = LocalExecutor(tmp_path, support).groups(handle)
    assert groups.dirs == launch.cgroup.dirs and groups
    if path == "systemd":
        assert groups.systemd is not None and launch.cgroup.systemd is not None
        assert groups.systemd.scope == launch.cgroup.systemd.scope == f"{cgroup_name(tmp_path, 12, 3)}.scope"
    assert LocalExecutor(tmp_path).groups(handle) == CgroupPlan()  # no cgroups here: none to reap
    assert LocalExecutor(tmp_path, support).groups(AttemptHandle(str(tmp_path / "elsewhere"))) == CgroupPlan()


@pytest.fixture
def orphan() -> Iterator[subprocess.Popen[bytes]]:
    """A job whose shim is gone: a process group leader of its own."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_kill_lost_reaps_the_proven_group_of_a_lost_attempt(
    tmp_path: Path, job_dir: Path, orphan: subprocess.Popen[bytes]
) -> None:
    executor = LocalExecutor(tmp_path)
    handle = executor.prepare(_launch(job_dir))
    run_dir = Path(handle)
    (run_dir / "claimed").touch()  # the shim claimed it, started the job, and died (kill -9)
    ticks = start_ticks(orphan.pid)
    status = Status(Phase.RUNNING, 1, orphan.pid, orphan.pid, time.time(), boot_id=boot_id(), start_ticks=ticks)
    write_status(run_dir, status)
    observed = executor.observe(handle)
    assert observed.seen is Seen.LOST and observed.status == status
    assert executor.processes(handle) == Processes(orphan.pid, CgroupPlan())  # what telemetry measures
    executor.kill_lost(handle)
    assert orphan.wait(timeout=5) == -signal.SIGKILL


def test_kill_lost_spares_a_group_that_is_no_longer_the_attempts(
    tmp_path: Path, job_dir: Path, orphan: subprocess.Popen[bytes]
) -> None:
    executor = LocalExecutor(tmp_path)
    handle = executor.prepare(_launch(job_dir))
    (Path(handle) / "claimed").touch()
    stale = Status(Phase.RUNNING, 1, orphan.pid, orphan.pid, 0.0, boot_id=boot_id(), start_ticks=1)  # pid reused
    write_status(Path(handle), stale)
    executor.kill_lost(handle)
    assert orphan.poll() is None and os.getpgid(orphan.pid) == orphan.pid
