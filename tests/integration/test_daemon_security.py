"""The daemon process under attack and under faults (security issue: D3, D7, A9, A10, A12, B5, B7, D14, A15).

Real daemons, real faults (a full tmpfs, a reused pid, planted links), real clients; user
``nobody`` plays the attacker, with the system's Python (this venv's interpreter lives under
/root, which nobody cannot enter) and the project's sources on its path. Needs root.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon_helpers import REPO, TWO_GPUS, DaemonProcess, finish, shell

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"
SITE = next((REPO / ".venv" / "lib").glob("python3*/site-packages"), REPO)
NOBODY_PATH = f"{REPO / 'src'}:{SITE}"  # what nobody's interpreter imports: our sources and our dependencies
TUXAI = str(Path(sys.executable).parent / "tuxai")

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root: the daemon runs as root, nobody attacks it")


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory every user may cross (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="tuxai-sec-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running(home: Path, *extra: str) -> Iterator[DaemonProcess]:
    """A started daemon on ``home``, stopped and cleaned up afterwards."""
    process = DaemonProcess(home, extra=extra).start()
    try:
        yield process
    finally:
        finish(process)


def raw(home: Path) -> httpx.Client:
    """HTTP on the daemon's socket without the SDK (which turns a 503 into an exception)."""
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(home / "tuxai.sock")), base_url="http://tuxai")


def wait_for(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.05)


def daemon_run(home: Path, *args: str, timeout_s: float = 15.0) -> subprocess.CompletedProcess[str]:
    """``python -m tuxai.api.server`` that is expected to refuse and exit (killed if it starts instead)."""
    argv = [sys.executable, "-m", "tuxai.api.server", "--home", str(home), "--inventory", str(TWO_GPUS)]
    argv += ["--metrics-addr", "127.0.0.1:0", *args]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        kill_leftover_daemon(home)
        raise AssertionError(f"the daemon started instead of refusing: {out}{err}") from None
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def kill_leftover_daemon(home: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int((home / "daemon.lock").read_text()), signal.SIGKILL)


def as_nobody(argv: list[str], env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``argv`` as uid/gid 65534 with no supplementary group."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        argv, user=NOBODY, group=NOBODY, extra_groups=[], cwd="/tmp", text=True, capture_output=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": NOBODY_PATH, **(env or {})}, timeout=120, **kwargs,
    )  # fmt: skip


# ---- D3, D7: a tick that fails does not end the loop ------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs to fill and free."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; the file (remove it to free the disk)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def test_D7_full_disk_stalls_the_loop_health_says_so_and_jobs_start_again_once_freed(small_disk: Path) -> None:
    home = small_disk / "home"
    with running(home, "--tick-period", "0.5", "--telemetry-period", "0.2") as daemon, raw(home) as http:
        job = daemon.client.submit(shell("exit 3", retries=1, retry_backoff="2s"))
        wait_for(lambda: daemon.client.job(job)["state"] == "requeued", 20, "the first attempt failed")
        filler = fill(small_disk)
        # The retry is due in 2 s: starting it writes launch.json, and the disk is full.
        wait_for(lambda: http.get("/v1/health").status_code == 503, 20, "health reports the stalled loop")
        stale = http.get("/v1/health").json()
        assert stale["ok"] is False and stale["error"] == "DaemonError"
        assert "scheduling loop" in stale["message"] and "daemon.log" in stale["hint"]
        assert stale["last_tick_age_s"] > 1.5 and stale["tick_errors"] >= 1
        assert daemon.client.job(job)["attempt"] == 1  # nothing started meanwhile
        steps = stale["telemetry_steps"]

        filler.unlink()
        wait_for(lambda: daemon.client.job(job)["state"] == "failed", 45, "the retry ran once space was freed")
        assert daemon.client.job(job)["exit_code"] == 3
        fresh = daemon.client.submit(shell("echo after"))
        assert daemon.wait_all([fresh], timeout_s=20)[fresh]["state"] == "succeeded"
        healthy = http.get("/v1/health")
        assert healthy.status_code == 200 and healthy.json()["ok"] is True
        assert healthy.json()["last_tick_age_s"] < 1.5 and healthy.json()["tick_errors"] >= 1
        # The telemetry thread went through the same full disk and still samples.
        wait_for(lambda: http.get("/v1/health").json()["telemetry_steps"] > steps + 3, 10, "telemetry goes on")
    log = (home / "daemon.log").read_text()
    assert "tuxai.daemon" in log  # logged with a time and the logger's name (what fitted on the disk)
