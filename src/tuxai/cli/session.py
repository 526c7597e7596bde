"""``tuxai run`` and ``tuxai attach``: the client side of an interactive session (Slurm's salloc / srun --pty).

``run`` submits the session as a job, says why it waits while it is pending (Ctrl-C then
cancels it), and attaches the terminal once the shim serves it (``executor.session``):
raw mode with ``--pty`` (restored on every way out), the window size passed on and again
on every SIGWINCH; without ``--pty`` stdin and stdout are relayed as they are, stdin's end
closes the job's, and Ctrl-C is sent to the job as SIGINT. ``DETACH_TEXT`` detaches: the
session goes on; ``attach`` comes back to it. The session's end is the job's: the client
exits with the job's status (128 + N for a signal, as a shell says it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import select
import shutil
import signal
import socket
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from tuxai.api.client import Client
from tuxai.cli.jobs import client, printable
from tuxai.errors import PermissionDenied, UsageError
from tuxai.model.job import JobSpec, JobState
from tuxai.model.session import (
    DETACH_TEXT,
    PTY,
    SOCKET,
    DetachScanner,
    FrameReader,
    Kind,
    frame,
    json_frame,
    read_json,
)
from tuxai.model.wire import Job, PublicJob

EXIT_INTERRUPTED = 130
CONNECT_WAIT_S = 15.0  # a running job's shim makes its socket before it starts the job


def _say(text: str) -> None:
    """A line of our own on stderr, readable also while the terminal is raw."""
    sys.stderr.write(text.replace("\n", "\r\n") + "\r\n")
    sys.stderr.flush()


def run_session(home: Path | None, spec: JobSpec, env_cache: Callable[[str], str] | None) -> int:
    """Submit ``spec`` as a session, wait for it (Ctrl-C cancels it while pending), attach."""
    if spec.env_path and env_cache is not None:
        spec = dataclasses.replace(spec, env_path=env_cache(spec.env_path))
    with client(home) as api:
        job_id = api.submit(spec)
        how = f"detach: {DETACH_TEXT}, " if spec.session == PTY else ""
        _say(f"job {job_id}: interactive session ({how}re-attach: tuxai attach {job_id})")
        try:
            job = _wait_to_start(api, job_id)
        except KeyboardInterrupt:
            api.cancel(job_id)
            _say(f"job {job_id}: cancelled while pending")
            return EXIT_INTERRUPTED
        return _attach(api, job, from_start=True)


def run_attach(home: Path | None, job_id: int) -> int:
    """Re-attach to session ``job_id``: its owner or root only (one line otherwise)."""
    with client(home) as api:
        job = _own_session(api.job(job_id))
        if job.state.waiting:
            _say(f"job {job_id}: waiting to start (Ctrl-C stops waiting; the job stays queued)")
            try:
                job = _wait_to_start(api, job_id)
            except KeyboardInterrupt:
                return EXIT_INTERRUPTED
        return _attach(api, job)


def _own_session(job: PublicJob) -> Job:
    """``job`` if the caller may attach to it: theirs (or any, for root) and a session.

    Raises:
        PermissionDenied: another user's job.
        UsageError: a batch job, not a session.
    """
    if not isinstance(job, Job):
        raise PermissionDenied(
            f"job {job.id} is {printable(job.user)}'s: only its owner and root can attach to it",
            hint="tuxai ls shows whose jobs are whose",
        )
    if not job.spec.session:
        raise UsageError(
            f"job {job.id} is a batch job, not an interactive session",
            hint=f"tuxai logs -f {job.id} follows its output; tuxai run starts a session",
        )
    return job


def _wait_to_start(api: Client, job_id: int, poll_s: float = 0.25) -> Job:
    """The job once it runs or has ended; says why it waits (``KeyboardInterrupt`` passes).

    On a terminal one line, rewritten as the reason changes ("starts within 40 s" counts down);
    elsewhere a line each time the reason changes in more than its numbers.
    """
    said, live = "", sys.stderr.isatty()
    try:
        while True:
            job = _own_session(api.job(job_id))
            if not job.state.waiting:
                return job
            line = printable(f"job {job_id}: {job.state.value}" + (f" ({job.reason})" if job.reason else ""))
            if live and line != said:
                sys.stderr.write(f"\r\x1b[K{line}")
                sys.stderr.flush()
            elif not live and re.sub(r"\d+", "#", line) != re.sub(r"\d+", "#", said):
                _say(line)
            said = line
            time.sleep(poll_s)
    finally:
        if live and said:
            _say("")


def _status(job: PublicJob) -> int:
    """A shell's exit status for the job: its exit code, 128 + its signal."""
    if job.signal:
        return 128 + job.signal
    return job.exit_code if job.exit_code is not None else (0 if job.state is JobState.SUCCEEDED else 1)


def _ended(api: Client, job: Job) -> int:
    """The job ended before we attached: its output from the log, then its status."""
    offset = 0
    while True:
        data, offset, _ = api.log(job.id, offset)
        if not data:
            break
        sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    detail = f" (exit {job.exit_code})" if job.exit_code else (f" (signal {job.signal})" if job.signal else "")
    if job.state is not JobState.SUCCEEDED:
        _say(f"job {job.id}: {job.state.value}{detail}" + (f": {printable(job.reason)}" if job.reason else ""))
    return _status(job)


def _connect(api: Client, job: Job) -> tuple[socket.socket | None, Job]:
    """A connection to the session's socket, or None once the job has ended.

    Raises:
        PermissionDenied: the socket is not the caller's to open.
    """
    path = Path(job.log_path).parent / SOCKET  # the job's directory, beside its log
    deadline = time.monotonic() + CONNECT_WAIT_S
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            with _short_address(path) as address:
                sock.connect(address)
            return sock, job
        except PermissionError:
            sock.close()
            raise PermissionDenied(
                f"job {job.id}: its session is not yours to attach to (only its owner and root)", hint=str(path)
            ) from None
        except OSError as exc:
            sock.close()
            if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED) or time.monotonic() > deadline:
                raise UsageError(f"job {job.id}: cannot reach its session: {exc.strerror}", hint=str(path)) from None
        job = _own_session(api.job(job.id))
        if job.state.terminal:
            return None, job
        time.sleep(0.05)


@contextlib.contextmanager
def _short_address(path: Path) -> Iterator[str]:
    """``path`` as AF_UNIX takes it (108 bytes): through ``/proc/self/fd`` of its directory when longer."""
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _window() -> dict[str, int]:
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(fd)
            return {"rows": size.lines, "cols": size.columns}
    size = shutil.get_terminal_size()
    return {"rows": size.lines, "cols": size.columns}


@contextlib.contextmanager
def _raw(fd: int, wanted: bool) -> Iterator[None]:
    """The terminal on ``fd`` in raw mode while inside; its settings back on every way out."""
    saved = termios.tcgetattr(fd) if wanted else None
    if saved is not None:
        tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):  # a terminal that hung up has no settings to restore
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _attach(api: Client, job: Job, from_start: bool = False) -> int:
    """Relay the terminal and the session until it ends (its status) or we detach (0).

    ``from_start``: show all the attempt's output (``tuxai run``), else what the session keeps."""
    if job.state.terminal and not from_start:
        _say(f"job {job.id} has ended ({job.state.value}): tuxai logs {job.id} shows its output")
        return _status(job)
    if job.state.terminal:
        return _ended(api, job)
    try:
        sock, job = _connect(api, job)
    except KeyboardInterrupt:
        _say(f"job {job.id}: goes on (tuxai attach {job.id} comes back to it)")
        return EXIT_INTERRUPTED
    if sock is None:
        return _ended(api, job)
    pty = job.spec.session == PTY
    stdin = sys.stdin.fileno()
    with sock, _signals() as (wake, caught), _raw(stdin, pty and os.isatty(stdin)):
        try:
            sock.sendall(json_frame(Kind.HELLO, {**_window(), "from_start": from_start}))
            code = _relay(api, job, sock, stdin, wake, caught)
        except (BrokenPipeError, ConnectionResetError):  # the session's end of the socket is gone
            code = None
    return code if code is not None else _closed(api, job)


def _closed(api: Client, job: Job, wait_s: float = 5.0) -> int:
    """The session closed without an exit status (its shim is gone): the job's status, from the daemon."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        job = _own_session(api.job(job.id))
        if job.state.terminal:
            return _status(job)
        time.sleep(0.1)
    _say(f"[job {job.id}: its session closed; tuxai show {job.id} says what became of it]")
    return 1


@contextlib.contextmanager
def _signals() -> Iterator[tuple[int, list[int]]]:
    """SIGWINCH and SIGINT caught into a list (and a wake-up pipe); SIGTERM and SIGHUP leave (raw mode restored)."""
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    caught: list[int] = []

    def keep(signum: int, _: FrameType | None) -> None:
        caught.append(signum)

    def leave(signum: int, _: FrameType | None) -> None:
        raise SystemExit(EXIT_INTERRUPTED)

    wanted = {signal.SIGWINCH: keep, signal.SIGINT: keep, signal.SIGTERM: leave, signal.SIGHUP: leave}
    old_fd = signal.set_wakeup_fd(wake_w)
    before = {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
    try:
        yield wake_r, caught
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(old_fd)
        os.close(wake_r)
        os.close(wake_w)


def _relay(api: Client, job: Job, sock: socket.socket, stdin: int, wake: int, caught: list[int]) -> int | None:
    """Relay until the session ends (its status), we detach (0), or it closes unannounced (None)."""
    pty = job.spec.session == PTY
    scanner, reader, reading = DetachScanner(), FrameReader(), True
    while True:
        fds = [sock.fileno(), wake, *([stdin] if reading else [])]
        try:
            ready, _, _ = select.select(fds, [], [])
        except InterruptedError:
            ready = []
        if wake in ready or caught:
            with contextlib.suppress(BlockingIOError):
                os.read(wake, 512)
            while caught:
                signum = caught.pop(0)
                if signum == signal.SIGWINCH:
                    sock.sendall(json_frame(Kind.RESIZE, _window()))
                else:
                    sock.sendall(json_frame(Kind.SIGNAL, {"signal": int(signum)}))
        if reading and stdin in ready:
            data = os.read(stdin, 65536)
            if not data and pty and os.isatty(stdin):
                return 0  # the terminal hung up (a dropped ssh): detached, the session goes on
            if not data:
                reading = False
                if not pty:
                    sock.sendall(frame(Kind.EOF))
            else:
                data, detach = scanner.feed(data) if pty else (data, False)
                if data:
                    sock.sendall(frame(Kind.INPUT, data))
                if detach:
                    sock.sendall(frame(Kind.DETACH))
                    _say(f"\n[detached from job {job.id}: it goes on; tuxai attach {job.id} comes back]")
                    return 0
        if sock.fileno() in ready:
            code = _from_session(api, job, sock, reader)
            if code != _GOING_ON:
                return code


_GOING_ON = -1


def _on_frame(api: Client, job: Job, kind: Kind, payload: bytes) -> int:
    """One frame from the shim: ``_GOING_ON``, or the client's exit status."""
    if kind is Kind.OUTPUT:
        _write_all(sys.stdout.fileno(), payload)
    elif kind is Kind.SYNC:
        span = read_json(payload)
        _print_log(api, job.id, int(span.get("start", 0)), int(span.get("end", 0)))
    elif kind is Kind.EXIT:
        ended = read_json(payload)
        code, signum = ended.get("exit_code"), ended.get("signal")
        return 128 + signum if isinstance(signum, int) else code if isinstance(code, int) else 1
    elif kind is Kind.REFUSED:
        raise PermissionDenied(f"job {job.id}: {payload.decode(errors='replace')}", hint="tuxai ls")
    elif kind is Kind.TAKEN:
        _say(f"\n[detached from job {job.id}: {payload.decode(errors='replace')}]")
        return 0
    return _GOING_ON


def _print_log(api: Client, job_id: int, start: int, end: int) -> None:
    """Bytes ``start`` to ``end`` of the job's log on stdout (what it printed before we attached)."""
    while start < end:
        data, _, _ = api.log(job_id, start)
        if not data:
            break
        _write_all(sys.stdout.fileno(), data[: end - start])
        start += len(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _from_session(api: Client, job: Job, sock: socket.socket, reader: FrameReader) -> int | None:
    """Handle what the shim sent: ``_GOING_ON``, the client's exit status, or None when it closed unannounced."""
    try:
        data = sock.recv(65536)
    except OSError:
        data = b""
    if not data:
        return None
    try:
        for kind, payload in reader.feed(data):
            code = _on_frame(api, job, kind, payload)
            if code != _GOING_ON:
                return code
    except BrokenPipeError:  # whatever read our stdout is gone (| head): the job gets SIGPIPE, as in a pipe
        with contextlib.suppress(OSError):
            sock.sendall(json_frame(Kind.SIGNAL, {"signal": int(signal.SIGPIPE)}))
        return 128 + signal.SIGPIPE
    except OSError as exc:  # EIO: our terminal is gone; the session goes on without us
        if exc.errno != errno.EIO:
            raise
        return 0
    return _GOING_ON
