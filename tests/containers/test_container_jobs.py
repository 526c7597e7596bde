"""Issue 19: container jobs through the real daemon, podman and CDI (the done-when of the issue)."""

from __future__ import annotations

import re
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


def _devices(daemon: DaemonProcess, job_id: int) -> list[str]:
    """The fake GPUs the job listed in /dev (none yet while its shim starts)."""
    log = Path(daemon.job(job_id).log_path)
    return re.findall(r"^fakegpu\d$", log.read_text() if log.exists() else "", re.MULTILINE)


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
    grow = 'python3 -c "b = []\nwhile True: b.append(bytearray(16 << 20))"'
    job_id = daemon.client.submit(
        {"command": ["sh", "-c", f"echo started; {grow}"], "mem": "96MiB", "image": python_image}
    )
    job = daemon.wait_all([job_id], timeout_s=60)[job_id]
    detail = daemon.job(job_id)
    assert job.state is JobState.FAILED, (job, daemon.log(job_id))
    assert detail.oom_killed, (detail, daemon.log(job_id))
    assert "started" in daemon.log(job_id)
