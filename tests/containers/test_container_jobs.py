"""Issue 19: container jobs through the real daemon, podman and CDI (the done-when of the issue)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess
from tuxai.model.job import JobState

pytestmark = pytest.mark.containers

SEE = "ls /dev | grep fakegpu; echo CUDA=$CUDA_VISIBLE_DEVICES; id -u"


def _wait(daemon: DaemonProcess, ids: list[int], states: list[JobState], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        now = [daemon.job(i).state for i in ids]
        if now == states:
            return
        assert time.monotonic() < deadline, f"jobs {ids} are {now}, not {states}"
        time.sleep(0.05)


def _output(daemon: DaemonProcess, job_id: int) -> str:
    """The job's output so far ("" while its shim starts)."""
    log = Path(daemon.job(job_id).log_path or "/nonexistent")
    return log.read_text() if log.exists() else ""


def _devices(daemon: DaemonProcess, job_id: int) -> list[str]:
    """The fake GPUs the job listed in /dev."""
    return re.findall(r"^fakegpu\d$", _output(daemon, job_id), re.MULTILINE)


def test_I19_two_container_jobs_see_only_their_own_gpu_and_a_third_gets_the_freed_one(
    daemon: DaemonProcess, python_image: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    script = f"{SEE}; while [ ! -e {go} ]; do sleep 0.05; done"
    ids = [
        daemon.client.submit(
            {"command": ["sh", "-c", script], "gpus": 1, "image": python_image, "workdir": str(tmp_path)}
        )
        for _ in range(3)
    ]
    _wait(daemon, ids, [JobState.RUNNING, JobState.RUNNING, JobState.PENDING])
    deadline = time.monotonic() + 30
    while not all(_devices(daemon, i) for i in ids[:2]) and time.monotonic() < deadline:
        time.sleep(0.05)
    first, second = (_devices(daemon, i) for i in ids[:2])
    assert len(first) == 1 and len(second) == 1 and first != second, (first, second)
    assert "GPU" in daemon.job(ids[2]).reason or "gpu" in daemon.job(ids[2]).reason.lower()
    go.touch()
    jobs = daemon.wait_all(ids, timeout_s=60)
    assert [j.state for j in jobs.values()] == [JobState.SUCCEEDED] * 3, [daemon.log(i) for i in ids]
    third = _devices(daemon, ids[2])
    assert len(third) == 1 and third[0] in first + second


def test_I19_memory_limit_holds_inside_the_container_and_the_oom_kill_is_recorded(
    daemon: DaemonProcess, python_image: str
) -> None:
    Path("/oom").unlink(missing_ok=True)  # conmon writes "oom" where podman runs: it ran in / once
    grow = 'python3 -c "b = []\nwhile True: b.append(bytearray(16 << 20))"'
    job_id = daemon.client.submit(
        {"command": ["sh", "-c", f"echo started; {grow}"], "mem": "96MiB", "image": python_image}
    )
    job = daemon.wait_all([job_id], timeout_s=60)[job_id]
    detail = daemon.job(job_id)
    assert job.state is JobState.FAILED, (job, daemon.log(job_id))
    assert detail.oom_killed, (detail, daemon.log(job_id))
    assert "started" in daemon.log(job_id)
    assert not Path("/oom").exists()


def test_I19_a_cancel_reaches_the_job_inside_with_its_grace_and_a_checkpoint_resumes(
    daemon: DaemonProcess, python_image: str
) -> None:
    term = "trap 'echo got TERM; touch $TUXAI_CHECKPOINT_DIR/term; exit 3' TERM; echo started"
    cancelled = daemon.client.submit(
        {"command": ["sh", "-c", f"{term}; while :; do sleep 0.1; done"], "grace": "20s", "image": python_image}
    )
    deadline = time.monotonic() + 30
    while "started" not in _output(daemon, cancelled):
        assert time.monotonic() < deadline, _output(daemon, cancelled)
        time.sleep(0.05)
    daemon.client.cancel(cancelled)
    job = daemon.wait_all([cancelled], timeout_s=30)[cancelled]
    assert job.state is JobState.CANCELLED and "got TERM" in daemon.log(cancelled)
    assert (Path(daemon.job(cancelled).log_path).parent / "checkpoint" / "term").exists()
    resume = (
        "if [ -e $TUXAI_CHECKPOINT_DIR/step ]; then echo resumed; exit 0; fi; touch $TUXAI_CHECKPOINT_DIR/step; exit 99"
    )
    requeued = daemon.client.submit({"command": ["sh", "-c", resume], "image": python_image})
    job = daemon.wait_all([requeued], timeout_s=60)[requeued]
    assert job.state is JobState.SUCCEEDED and "resumed" in daemon.log(requeued), daemon.log(requeued)


def test_I19_a_container_job_outlives_a_kill_9_of_the_daemon_with_its_real_exit_status(
    daemon: DaemonProcess, python_image: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    script = f"echo started; while [ ! -e {go} ]; do sleep 0.05; done; exit 7"
    job_id = daemon.client.submit({"command": ["sh", "-c", script], "image": python_image, "workdir": str(tmp_path)})
    deadline = time.monotonic() + 30
    while "started" not in _output(daemon, job_id):
        assert time.monotonic() < deadline, _output(daemon, job_id)
        time.sleep(0.05)
    daemon.kill9()
    daemon.start()
    assert daemon.job(job_id).state is JobState.RUNNING  # adopted: its shim still holds it
    go.touch()
    job = daemon.wait_all([job_id], timeout_s=30)[job_id]
    assert (job.state, job.exit_code) == (JobState.FAILED, 7), daemon.log(job_id)


def test_I19_the_cli_submits_an_image_with_its_shm_size(daemon: DaemonProcess, python_image: str) -> None:
    argv = [sys.executable, "-m", "tuxai", "submit", "--home", str(daemon.home), "--image", python_image]
    done = subprocess.run(
        [*argv, "--shm-size", "1GiB", "--json", "--", "sh", "-c", "df -k /dev/shm | tail -1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    job_id = int(json.loads(done.stdout)["id"])
    job = daemon.wait_all([job_id], timeout_s=60)[job_id]
    assert job.state is JobState.SUCCEEDED and daemon.log(job_id).split()[1] == str(1 << 20)  # KiB
    submit = [sys.executable, "-m", "tuxai", "submit", "--home", str(daemon.home), "--image=--privileged", "--", "true"]
    refused = subprocess.run(submit, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and refused.stderr.startswith("error: image '--privileged'"), refused.stderr
