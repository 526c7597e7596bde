"""A multi-node job on one node, through the real CLI and daemon: torchrun, DDP over gloo, gang teardown.

The job's Python is this venv's (torch 2.13.0+cpu, the ``torch`` extra): ``python`` and
``torchrun`` come first on the submitter's PATH, which the job inherits. No new environment
is built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.daemon_helpers import DaemonProcess
from tests.e2e.test_doctor_cli import one_line_error

JOBS = REPO / "examples" / "jobs"
RANK_LINE = re.compile(
    r"^rank (\d)/(\d) RANK=(\d) WORLD_SIZE=(\d) NODE_RANK=(\d) LOCAL_RANK=(\d) "
    r"CUDA_VISIBLE_DEVICES=(\S*) pid=(\d+)$",
    re.M,
)
CHECKSUM = re.compile(r"^rank (\d) step 0 loss \S+ grad checksum (\S+)$", re.M)


def submit(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``tuxai submit ARGS`` from examples/jobs, this venv's bin first on PATH."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env = {**os.environ, "TUXAI_HOME": str(home), "PATH": path}
    argv = [sys.executable, "-m", "tuxai", "submit", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=JOBS, timeout=60, check=False)


def gang(home: Path, *command: str) -> int:
    done = submit(home, "--json", "--nodes", "1", "--gpus-per-node", "2", "--launcher", "torchrun", "--", *command)
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["id"])


@pytest.mark.timeout(240)
def test_ddp_two_ranks_on_one_node_agree_on_their_gradients(daemon: DaemonProcess) -> None:
    job_id = gang(daemon.home, "python", "ddp.py")
    job = daemon.wait_all([job_id], timeout_s=200)[job_id]
    log = daemon.log(job_id)
    assert job.state == "succeeded", log
    ranks = sorted(RANK_LINE.findall(log))
    assert [r[:6] for r in ranks] == [("0", "2", "0", "2", "0", "0"), ("1", "2", "1", "2", "0", "1")], log
    # Both ranks see the two GPUs the scheduler chose, by UUID.
    assert {r[6] for r in ranks} == {",".join(job.gpus)} and len(job.gpus) == 2
    sums = dict(CHECKSUM.findall(log))
    assert set(sums) == {"0", "1"} and sums["0"] == sums["1"], log
    shown = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tuxai", "show", str(job_id), "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "TUXAI_HOME": str(daemon.home)},
            timeout=30,
            check=True,
        ).stdout
    )
    assert shown["command"][:1] == ["python"]  # the command as submitted; torchrun's line is the node's
    text = subprocess.run(
        [sys.executable, "-m", "tuxai", "show", str(job_id)],
        capture_output=True,
        text=True,
        env={**os.environ, "TUXAI_HOME": str(daemon.home), "COLUMNS": "200"},
        timeout=30,
        check=True,
    ).stdout
    assert "1 node × (2 GPU, 1 CPU), launcher torchrun" in text, text


@pytest.mark.timeout(240)
def test_ddp_without_gpus_runs_nproc_per_node_ranks(daemon: DaemonProcess) -> None:
    done = submit(daemon.home, "--json", "--nodes", "1", "--nproc-per-node", "2", "--launcher", "torchrun", "--",
                  "python", "ddp.py")  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = int(json.loads(done.stdout)["id"])
    job = daemon.wait_all([job_id], timeout_s=200)[job_id]
    log = daemon.log(job_id)
    assert job.state == "succeeded" and not job.gpus, log
    ranks = sorted(RANK_LINE.findall(log))
    assert [(r[0], r[3], r[6]) for r in ranks] == [("0", "2", ""), ("1", "2", "")], log  # no GPU seen
    sums = dict(CHECKSUM.findall(log))
    assert set(sums) == {"0", "1"} and sums["0"] == sums["1"], log


@pytest.mark.timeout(240)
def test_a_rank_that_exits_1_fails_the_gang_and_no_rank_is_left(daemon: DaemonProcess) -> None:
    job_id = gang(daemon.home, "python", "ddp.py", "--fail-rank", "1")
    job = daemon.wait_all([job_id], timeout_s=200)[job_id]
    log = daemon.log(job_id)
    assert job.state == "failed" and job.exit_code == 1, log
    pids = [int(r[7]) for r in RANK_LINE.findall(log)]
    assert len(pids) == 2 and "rank 1: failing on purpose" in log, log
    deadline = time.monotonic() + 10
    while any(_alive_rank(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive_rank(pid) for pid in pids), "a rank outlived its gang"


@pytest.mark.timeout(240)
def test_cancel_of_a_running_gang_leaves_no_rank(daemon: DaemonProcess) -> None:
    job_id = gang(daemon.home, "python", "ddp.py", "--fail-rank", "9")  # no rank 9: every rank waits
    deadline = time.monotonic() + 180
    while len(RANK_LINE.findall(_log(daemon, job_id))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    pids = [int(r[7]) for r in RANK_LINE.findall(_log(daemon, job_id))]
    assert len(pids) == 2 and all(_alive_rank(pid) for pid in pids)
    cancelled = subprocess.run(
        [sys.executable, "-m", "tuxai", "cancel", str(job_id)],
        env={**os.environ, "TUXAI_HOME": str(daemon.home)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert cancelled.returncode == 0, cancelled.stderr
    assert daemon.wait_all([job_id], timeout_s=90)[job_id].state == "cancelled"
    assert not any(_alive_rank(pid) for pid in pids), "a rank outlived its cancelled gang"


def test_two_nodes_are_refused_at_submit_naming_this_daemons_shape(daemon: DaemonProcess) -> None:
    started = time.monotonic()
    done = submit(daemon.home, "--nodes", "2", "--gpus-per-node", "1", "--launcher", "torchrun", "--", "python", "x.py")
    line = one_line_error(done)
    assert "this daemon runs one node (local executor: 2 GPUs); --nodes 2 needs a cluster engine" in line
    assert time.monotonic() - started < 5 and daemon.client.jobs() == []


def test_a_command_torchrun_cannot_take_is_refused_at_submit(daemon: DaemonProcess) -> None:
    line = one_line_error(submit(daemon.home, "--nodes", "1", "--launcher", "torchrun", "--", "bash", "run.sh"))
    assert "--launcher torchrun cannot run 'bash run.sh'" in line and "--launcher none" in line
    assert daemon.client.jobs() == []


def test_launcher_none_hands_the_variables_to_the_command(daemon: DaemonProcess) -> None:
    show = "echo $MASTER_ADDR $WORLD_SIZE $NNODES $NODE_RANK $NPROC_PER_NODE $PET_NNODES $TUXAI_LAUNCHER"
    done = submit(daemon.home, "--json", "--nodes", "1", "--gpus-per-node", "2", "--", "sh", "-c", show)
    assert done.returncode == 0, done.stderr
    job_id = int(json.loads(done.stdout)["id"])
    assert daemon.wait_all([job_id])[job_id].state == "succeeded"
    assert daemon.log(job_id) == "127.0.0.1 2 1 0 2 1 none\n"


def _log(daemon: DaemonProcess, job_id: int) -> str:
    try:
        return daemon.log(job_id)
    except FileNotFoundError:  # not started yet
        return ""


def _alive_rank(pid: int) -> bool:
    """The process ``pid`` is still a rank of ddp.py (not a later process given the same number)."""
    try:
        return b"ddp.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
