"""A rank's env build on its node stopped by the shim (executor.node_env, issue 15 review item 1): a real
shim, a real builder and uv held by an index that accepts and never answers; a cancel ends the build
within the grace and leaves no builder, and a lost shim's builder is reached by ``kill_lost``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuxai.executor.attempt import AttemptHandle, Seen
from tuxai.executor.local import LocalExecutor
from tuxai.executor.rundir import Launch, read_status
from tuxai.model.job import StopReason


@pytest.fixture
def silent_index() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def _builders(cache: Path) -> list[int]:
    """The builders (and their uv) of this test's cache still alive."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdecimal():
            try:
                command = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            except OSError:
                continue
            if str(cache).encode() in command and state != "Z":
                found.append(int(entry.name))
    return found


def _leave_none(cache: Path) -> None:
    """A failed test leaves no builder behind (SIGKILL to what is left)."""
    for pid in _builders(cache):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait(what: object, seconds: float) -> None:
    began = time.monotonic()
    while not what():  # type: ignore[operator]
        assert time.monotonic() - began < seconds, f"not within {seconds} s"
        time.sleep(0.02)


def _start(tmp_path: Path, port: int) -> tuple[LocalExecutor, AttemptHandle, Path]:
    job_dir, cache = tmp_path / "jobs" / "5", tmp_path / "node-cache"
    job_dir.mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UV_HTTP_TIMEOUT": "300", "UV_NO_CACHE": "1"}
    text = f"tiny @ http://127.0.0.1:{port}/tiny-1.0-py3-none-any.whl\n"
    launch = Launch(5, 1, ("true",), env, "", str(job_dir / "output.log"), job_dir=str(job_dir), grace_s=1.0,
                    env_lock=text, env_cache=str(cache), node="127.0.0.9")  # fmt: skip
    executor = LocalExecutor(tmp_path)
    handle = executor.prepare(launch)
    executor.start(handle)
    log = job_dir / "output.log"
    try:
        _wait(lambda: log.is_file() and "building the job environment" in log.read_text(errors="replace"), 20)
    except AssertionError:
        executor.close()
        raise
    return executor, handle, cache


def test_E15_R1_a_cancel_during_a_nodes_env_build_ends_it_within_the_grace(tmp_path: Path, silent_index: int) -> None:
    executor, handle, cache = _start(tmp_path, silent_index)
    try:
        assert _builders(cache)
        asked = time.monotonic()
        executor.stop(handle, StopReason.CANCEL)
        _wait(lambda: executor.observe(handle).seen is Seen.EXITED, 10)
        took = time.monotonic() - asked
        left = _builders(cache)
    finally:
        executor.close()
        _leave_none(cache)
    status = read_status(Path(handle))
    assert status is not None and status.stop_reason is StopReason.CANCEL, status
    assert "stopped while the job environment was being built on node 127.0.0.9" in status.error
    assert took < 1.0 + 2.0  # the grace, and the shim's own work
    assert left == []


def test_E15_R1_a_lost_shims_env_builder_is_killed_by_kill_lost(tmp_path: Path, silent_index: int) -> None:
    executor, handle, cache = _start(tmp_path, silent_index)
    try:
        status = read_status(Path(handle))
        assert status is not None and status.pgid is not None and status.pgid in _builders(cache)
        os.kill(status.shim_pid, signal.SIGKILL)  # the shim lost: its builder is orphaned
        _wait(lambda: executor.observe(handle).seen is Seen.LOST, 10)
        executor.kill_lost(handle)
        _wait(lambda: _builders(cache) == [], 5)
    finally:
        executor.close()
        _leave_none(cache)
