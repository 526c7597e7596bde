"""The shim's side of a session (executor/session.py) with a real job process and a real socket."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tuxai.executor.session import Session
from tuxai.model.session import PIPE, PTY, SOCKET, FrameReader, Kind, frame, json_frame


def _start(tmp_path: Path, mode: str, script: str) -> tuple[Session, subprocess.Popen[bytes]]:
    log = os.open(tmp_path / "output.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    session = Session(mode, tmp_path, None, log)
    os.close(log)
    stdin, stdout, stderr = session.child_fds
    process = subprocess.Popen(
        ["sh", "-c", script], stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=mode == PTY,
        preexec_fn=session.in_child,
    )  # fmt: skip
    session.started(process.pid)
    return session, process


def _frames(sock: socket.socket) -> list[tuple[Kind, bytes]]:
    reader, frames = FrameReader(), []
    with sock:
        sock.settimeout(5)
        while data := sock.recv(65536):
            frames += reader.feed(data)
    return frames


def test_a_client_that_connects_as_the_job_ends_hears_its_output_and_status(tmp_path: Path) -> None:
    session, process = _start(tmp_path, PTY, "echo last words; exit 4")
    process.wait()
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(tmp_path / SOCKET))  # in the listen queue: the shim's loop never saw it
    session.finish(4, None)
    frames = _frames(client)
    assert b"".join(p for k, p in frames if k is Kind.OUTPUT) == b"last words\r\n"
    assert frames[-1] == (Kind.EXIT, b'{"exit_code": 4, "signal": null}')
    assert (tmp_path / "output.log").read_bytes() == b"last words\r\n"
    assert not (tmp_path / SOCKET).exists()  # removed with the session


def test_pipe_session_passes_input_before_closing_stdin(tmp_path: Path) -> None:
    session, process = _start(tmp_path, PIPE, "cat; echo done")
    info = (tmp_path / SOCKET).lstat()
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(tmp_path / SOCKET))
    client.sendall(frame(Kind.HELLO, b"{}") + frame(Kind.INPUT, b"a" * 200_000) + frame(Kind.EOF))
    while process.poll() is None:  # the shim's loop, as shim.Shim._wait runs it
        ready, writable, _ = select.select(session.readers(), session.writers(), [], 0.05)
        session.step(ready, writable)
    session.finish(0, None)
    output = b"".join(p for k, p in _frames(client) if k is Kind.OUTPUT)
    assert output == b"a" * 200_000 + b"done\n"  # all of it (more than a pipe holds), then the job's end


def _step_until(session: Session, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the session did not get there"
        ready, writable, _ = select.select(session.readers(), session.writers(), [], 0.05)
        session.step(ready, writable)


def test_run_sees_each_byte_once_however_late_it_says_hello(tmp_path: Path) -> None:
    session, process = _start(tmp_path, PIPE, "echo early; read x; echo got $x")
    _step_until(session, lambda: b"early" in session.ring)  # printed before anyone attached
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(tmp_path / SOCKET))
    _step_until(session, lambda: session.client is not None)
    client.sendall(frame(Kind.INPUT, b"x\n"))  # typed before its hello: the job answers at once
    _step_until(session, lambda: b"got x" in session.ring)
    client.sendall(json_frame(Kind.HELLO, {"rows": 24, "cols": 80, "from_start": True}))
    _step_until(session, lambda: process.poll() is not None)
    session.finish(0, None)
    frames = _frames(client)
    # All of it is in the log span the client reads through the API; none of it comes twice.
    assert frames == [(Kind.SYNC, b'{"start": 0, "end": 12}'), (Kind.EXIT, b'{"exit_code": 0, "signal": null}')]
    assert (tmp_path / "output.log").read_bytes() == b"early\ngot x\n"


def test_a_terminal_jobs_process_groups_all_count_as_the_job() -> None:
    from tuxai.telemetry.procfs import group_usage, parse_stat

    # A shell with job control puts each command in a process group of its own, in its session.
    script = (
        "import subprocess; p = subprocess.Popen(['sleep', '30'], process_group=0); print(p.pid, flush=True); p.wait()"
    )
    leader = subprocess.Popen(["python3", "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    try:
        assert leader.stdout is not None
        child = int(leader.stdout.readline())
        deadline = time.monotonic() + 5
        while parse_stat(Path(f"/proc/{child}/stat").read_text())[0] != child:  # in its own group by now
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert {leader.pid, child} <= group_usage({leader.pid})[leader.pid][4]
    finally:
        os.killpg(leader.pid, 9)
        with contextlib.suppress(ProcessLookupError, UnboundLocalError):
            os.kill(child, 9)
        leader.wait()
        leader.stdout.close()  # type: ignore[union-attr]
