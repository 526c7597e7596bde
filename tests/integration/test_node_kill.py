"""A rank's node groups reached by the kill path (executor.ray_node, issue 15 review item 2): a node's
launcher (``NodeRunner``, run here without a cluster: the same object a node's actor holds) kills what
is left of a lost rank in the cgroup its launch was planned with, and removes the group."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tuxai.executor import cgroups
from tuxai.executor.attempt import Seen
from tuxai.executor.ray_node import NodeRunner
from tuxai.executor.rundir import Launch, Phase, read_launch, read_status
from tuxai.hardware.cgroups import detect_cgroups
from tuxai.model.cgroup import CgroupPlan


def _wait(what: object, seconds: float) -> None:
    began = time.monotonic()
    while not what():  # type: ignore[operator]
        assert time.monotonic() - began < seconds, f"not within {seconds} s"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="a node's rank groups are made by a root worker")
def test_E15_R2_a_lost_ranks_escaped_process_and_its_node_group_are_gone_after_the_kill(tmp_path: Path) -> None:
    if not detect_cgroups().version:
        pytest.skip("no cgroup this test may write")  # the node would run the rank without one
    escaped = tmp_path / "escaped.pid"
    script = f"setsid sh -c 'echo $$ > {escaped}; exec sleep 300' & exec sleep 300"
    launch = Launch(7, 1, ("sh", "-c", script), {"PATH": "/usr/bin:/bin"}, "", str(tmp_path / "rank.log"),
                    memory_limit_bytes=256 * 2**20, user=(0, 0, ()), grace_s=1.0)  # fmt: skip
    runner, name = (
        NodeRunner(str(tmp_path / "node"), address="127.0.0.1"),
        f"tuxai-test-{os.getpid()}-{time.monotonic_ns()}-r0",
    )
    runner.start(name, launch, host=detect_cgroups)
    cgroup = CgroupPlan()
    try:
        handle = Path(tmp_path / "node" / name / "run-1")
        _wait(lambda: escaped.is_file() and escaped.read_text().strip(), 10)
        _wait(lambda: getattr(read_status(handle), "phase", None) is Phase.RUNNING, 10)  # the job may write first
        status, cgroup = read_status(handle), read_launch(handle).cgroup
        assert status is not None and status.phase is Phase.RUNNING and cgroup.dirs
        pid = int(escaped.read_text())
        assert os.getpgid(pid) != status.pgid  # it left the job's process group
        os.kill(status.shim_pid, signal.SIGKILL)  # the shim lost: nothing of it kills the rank now
        _wait(lambda: runner.observe(name).seen is Seen.LOST, 10)
        runner.kill(name)
        _wait(lambda: not _alive(pid), 5)
        assert not any(Path(d).exists() for d in cgroup.dirs.values())
    finally:
        runner.local.close()
        cgroups.kill_and_remove(cgroup)  # a failed test leaves no group behind
        if escaped.is_file() and escaped.read_text().strip() and _alive(int(escaped.read_text())):
            os.kill(int(escaped.read_text()), signal.SIGKILL)
