"""Jobs through a real daemon process: real shims, real SQLite, real HTTP on the Unix socket."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, shell
from tuxai.errors import JobNotFound, UsageError
from tuxai.hardware.cgroups import detect_cgroups

PY = sys.executable
REPORT = f"{PY} -c 'import os; print(os.environ[\"CUDA_VISIBLE_DEVICES\"]); print(sorted(os.sched_getaffinity(0)))'"


def test_three_one_gpu_jobs_on_two_gpus_two_run_one_waits(daemon: DaemonProcess) -> None:
    sleeps = (1.0, 3.0, 0.2)  # the first ends well before the second
    ids = [daemon.client.submit(shell(f"{REPORT}; sleep {s}", gpus=1, name=f"j{i}")) for i, s in enumerate(sleeps)]
    time.sleep(0.5)
    states = {j.id: j for j in daemon.client.jobs()}
    assert sorted(states[i].state for i in ids) == ["pending", "running", "running"]
    waiting = next(states[i] for i in ids if states[i].state == "pending")
    assert "GPU" in waiting.reason, waiting.reason

    jobs = daemon.wait_all(ids)
    assert all(jobs[i].state == "succeeded" for i in ids)
    first, second, third = (jobs[i] for i in ids)
    # The third started only when one of the first two ended, and on the GPU it gave back.
    assert first.ended_at - 0.05 <= third.started_at < second.ended_at
    assert third.gpus == first.gpus
    assert first.gpus != second.gpus
    for job_id in ids:
        visible, affinity = daemon.log(job_id).split("\n")[:2]
        job = jobs[job_id]
        assert visible == job.gpus[0] and visible.startswith("GPU-")
        assert ast.literal_eval(affinity) == list(job.cpus)
    assert jobs[ids[0]].cpus != jobs[ids[1]].cpus  # two jobs at once: two different CPUs


def test_cancel_running_job_gets_sigterm_then_its_state(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit(shell("trap 'echo got TERM; exit 3' TERM; echo started; sleep 30 & wait", grace="5s"))
    _wait_for_log(daemon, job_id, "started")
    daemon.client.cancel(job_id)
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "cancelled" and job.reason == "cancelled"
    assert "got TERM" in daemon.log(job_id)
    assert job.ran_s < 5


def test_cancel_after_grace_is_sigkill(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit(shell("trap '' TERM; echo started; sleep 30", grace="0.5s"))
    _wait_for_log(daemon, job_id, "started")
    daemon.client.cancel(job_id)
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "cancelled" and job.signal == 9
    assert 0.4 < job.ran_s < 5


def test_cancel_pending_and_hold_release(daemon: DaemonProcess) -> None:
    held = daemon.client.submit(shell("echo ran", hold=True))
    other = daemon.client.submit(shell("echo ran"))
    time.sleep(0.3)
    assert daemon.job(held).state == "pending"
    assert "held" in daemon.job(held).reason
    daemon.client.cancel(other) if daemon.job(other).state == "pending" else None
    daemon.client.release(held)
    assert daemon.wait_all([held])[held].state == "succeeded"
    with pytest.raises(UsageError, match="already ended") as ended:
        daemon.client.cancel(held)
    with pytest.raises(JobNotFound) as missing:
        daemon.client.cancel(12345)
    assert (ended.value.status, missing.value.status, missing.value.job_id) == (400, 404, 12345)


def test_time_limit_gives_timeout(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit(shell("sleep 30", time="1s", grace="1s"))
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "timeout"
    assert job.reason == "time limit of 1 s reached"
    assert 0.9 < job.ran_s < 5


def test_memory_limit_oom_kill(daemon: DaemonProcess) -> None:
    support = detect_cgroups()
    if support.version == 0:
        pytest.skip(f"cgroups are not writable here, so no memory limit can be enforced: {support.problem}")
    grab = f"{PY} -c 'x = bytearray(512 * 2**20); print(len(x))'"
    job_id = daemon.client.submit(shell(grab, mem="96MiB", retries=2))
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "failed" and job.oom_killed is True
    assert job.reason.startswith("out of memory: killed at the 96.0 MiB memory limit")
    assert job.failures == 0 and job.attempt == 1  # an OOM is not retried: it would OOM again


def test_retries_with_backoff_then_success(daemon: DaemonProcess, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    job_id = daemon.client.submit(shell(script, retries=3, retry_backoff="0.2s"))
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "succeeded"
    assert (job.attempt, job.failures) == (3, 2)
    states = [e.to_state for e in daemon.job(job_id).events]
    assert states == ["pending", "running", "requeued", "running", "requeued", "running", "succeeded"]


def test_retries_exhausted_fail_with_reason(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit(shell("exit 4", retries=1, retry_backoff="0.1s"))
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "failed" and job.exit_code == 4
    assert job.reason == "exit code 4 (after 1 retries)"


def test_checkpoint_exit_code_requeues(daemon: DaemonProcess) -> None:
    script = (
        'step="$TUXAI_CHECKPOINT_DIR/step"; '
        'if [ -f "$step" ]; then echo resumed from $(cat "$step"); exit 0; fi; '
        'echo 41 > "$step"; exit $TUXAI_REQUEUE_EXIT_CODE'
    )
    job_id = daemon.client.submit(shell(script))
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "succeeded" and job.requeues == 1 and job.failures == 0
    assert "resumed from 41" in daemon.log(job_id)
    reasons = [e.reason for e in daemon.job(job_id).events if e.to_state == "requeued"]
    assert reasons == ["exited with 99 (checkpoint saved): requeued"]


def test_preemption_requeues_the_preemptible_job(daemon: DaemonProcess) -> None:
    low = daemon.client.submit(
        shell("trap 'echo checkpoint; exit 99' TERM; echo low-start; sleep 30 & wait", gpus=2, preemptible=True)
    )
    _wait_for_log(daemon, low, "low-start")
    high = daemon.client.submit(shell("echo high", gpus=2, priority=50))
    jobs = daemon.wait_all([high], timeout_s=30)
    assert jobs[high].state == "succeeded"
    events = daemon.job(low).events
    assert [e.to_state for e in events][:3] == ["pending", "running", "requeued"]
    assert events[2].reason == f"preempted for job {high}; requeued"
    assert "checkpoint" in daemon.log(low)
    daemon.client.cancel(low)


def _wait_for_log(daemon: DaemonProcess, job_id: int, text: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    path = daemon.home / "jobs" / str(job_id) / "output.log"
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never printed {text!r}")


def test_tcp_needs_the_bearer_token_and_openapi_describes_the_api(tmp_path: Path) -> None:
    import httpx

    from tests.daemon_helpers import finish
    from tuxai.api.client import Client
    from tuxai.errors import PermissionDenied

    daemon = DaemonProcess(tmp_path / "home", extra=("--tcp", "127.0.0.1:0")).start()
    try:
        address = (daemon.home / "tcp.addr").read_text().strip()
        token = (daemon.home / "token").read_text().strip()
        assert (daemon.home / "token").stat().st_mode & 0o777 == 0o600
        with Client(url=f"http://{address}", token="wrong") as stranger, pytest.raises(PermissionDenied):
            stranger.jobs()
        with Client(url=f"http://{address}", token=token) as remote:
            job_id = remote.submit(shell("echo over tcp"))
            assert remote.wait(job_id).state == "succeeded"
        assert httpx.get(f"http://{address}/openapi.json").status_code == 401  # TCP: the token, for everything
        schema = httpx.get(f"http://{address}/openapi.json", headers={"authorization": f"Bearer {token}"}).json()
        assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cancel", "/v1/gpus"} <= set(schema["paths"])
    finally:
        finish(daemon)
