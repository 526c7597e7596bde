"""The shim's side of an interactive session (``tuxai run``): the job's terminal, the attach socket, the log.

With ``--pty`` the shim allocates a pseudo-terminal: the job starts in a session of its own
with the terminal's slave as its controlling terminal and stdin/stdout/stderr (its process
group the foreground one), and the shim keeps the master. Without it, the job's stdin and
stdout/stderr are pipes the shim holds. Either way the shim reads everything the job prints
into the job's log (``tuxai logs``), into a ring of the last ``RING_BYTES`` (replayed to
whoever attaches, so a re-attached shell shows where it was), and to the attached client.
While an attached client is more than ``HIGH_WATER`` behind, the job's output is not read:
the job waits on its stdout as it would on a slow terminal or pipe (``srun``, ssh), and the
time limit still holds. Detached, the output goes to the log as fast as the job writes it.

The attach socket is ``<job dir>/session.sock``: the job directory is the daemon's (0711, no
user can plant or rename anything there), the socket is bound under umask 0177 and handed to
the job's user with ``lchown`` — so only that user and root can connect — and each
connection's ``SO_PEERCRED`` is checked again (the owner, root or the shim's own user). One
client at a time: a new attach takes the session over, the old client is told so. The shim
never blocks on a client.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import time
from pathlib import Path

from tuxai.model.session import PTY, SOCKET, FrameReader, Kind, frame, json_frame, read_json, window

RING_BYTES = 64 * 1024
HIGH_WATER = 256 * 1024  # bytes owed to the client past which the job's output waits
MAX_PENDING = 1 << 20  # typed input held for a job that does not read it
SIGNALS = frozenset({signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE})  # a client's
_PEERCRED = struct.Struct("3i")


def _nonblocking(fd: int) -> int:
    os.set_blocking(fd, False)
    os.set_inheritable(fd, False)
    return fd


def _short_path(path: Path) -> tuple[str, int | None]:
    """``path`` as AF_UNIX takes it: through ``/proc/self/fd`` of its directory when too long (108 bytes)."""
    if len(os.fsencode(path)) < 100:
        return str(path), None
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    return f"/proc/self/fd/{fd}/{path.name}", fd


def listen(path: Path, owner: tuple[int, int] | None) -> socket.socket:
    """A listening socket at ``path``, mode 0600, owned by ``owner`` (root's shim for a user's job).

    Raises:
        OSError: it cannot be made.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # an earlier attempt's: the directory is the daemon's, nobody else put it there
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    address, dir_fd = _short_path(path)
    umask = os.umask(0o177)
    try:
        sock.bind(address)
        if owner is not None and os.geteuid() == 0:
            os.chown(address, owner[0], owner[1], follow_symlinks=False)
        sock.listen(4)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(umask)
        if dir_fd is not None:
            os.close(dir_fd)
    return sock


def set_window(fd: int, rows: int, cols: int) -> None:
    """The terminal's size (the kernel sends SIGWINCH to its foreground process group)."""
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Session:
    """One job's terminal (or pipes), its attach socket and its one attached client."""

    def __init__(self, mode: str, job_dir: Path, owner: tuple[int, int] | None, log_fd: int) -> None:
        self.mode, self.owner = mode, owner
        self.path = job_dir / SOCKET
        self.log_fd = os.dup(log_fd)
        self.log_start = os.fstat(log_fd).st_size  # this attempt's output begins here (a requeued job appends)
        self.ring = bytearray()
        self.pgid: int | None = None
        self.client: socket.socket | None = None
        self.reader = FrameReader()
        self.greeted = True  # the client had the ring replayed (or there is no client)
        self.to_client = bytearray()
        self.to_job = bytearray()
        self.input_ended = False  # pipe mode: the client's stdin ended; the job's closes once to_job is passed on
        if mode == PTY:
            master, slave = os.openpty()
            set_window(master, 24, 80)
            self.child_fds: tuple[int, ...] = (slave, slave, slave)
            self.input: int | None = _nonblocking(master)
            self.output: int | None = self.input
        else:
            in_r, in_w = os.pipe()
            out_r, out_w = os.pipe()
            self.child_fds = (in_r, out_w, out_w)
            self.input, self.output = _nonblocking(in_w), _nonblocking(out_r)
        self.listener = listen(self.path, owner)

    def in_child(self) -> None:
        """In the job's process, before ``exec`` (after ``setsid``): the terminal becomes its controlling one."""
        if self.mode == PTY:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def started(self, pgid: int) -> None:
        """The job runs: close the child's ends here (the job's exit then reads as EOF/EIO)."""
        self.pgid = pgid
        for fd in set(self.child_fds):
            os.close(fd)
        self.child_fds = ()

    def hang_up(self) -> None:
        """A stop: SIGHUP to the terminal's job (an interactive shell ignores SIGTERM, not a hangup)."""
        if self.mode == PTY and self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGHUP)

    def readers(self) -> list[int]:
        """The descriptors to wait on for reading."""
        fds = [self.listener.fileno()]
        if self.output is not None and len(self.to_client) < HIGH_WATER:
            fds.append(self.output)
        if self.client is not None:
            fds.append(self.client.fileno())
        return fds

    def writers(self) -> list[int]:
        """The descriptors with something waiting to be written."""
        fds = [self.client.fileno()] if self.client is not None and self.to_client else []
        return fds + ([self.input] if self.input is not None and self.to_job else [])

    def step(self, readable: list[int], writable: list[int]) -> None:
        """Do what ``select`` says can be done now; never blocks."""
        if self.client is not None and self.client.fileno() in readable:
            self._read_client()  # first: a client's last words (a SIGPIPE) come before it goes
        if self.output is not None and self.output in readable:
            self._read_output()
        if self.listener.fileno() in readable:
            self._accept()
        if self.client is not None and self.client.fileno() in writable:
            self._flush_client()
        if self.input is not None and (self.input in writable or self.input_ended):
            self._write_job()

    def _write_job(self) -> None:
        """Pass typed input on to the job; close its stdin once the client's has ended and all is passed."""
        assert self.input is not None
        try:
            del self.to_job[: os.write(self.input, self.to_job) if self.to_job else 0]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the job closed its end
            self.to_job.clear()
        if self.input_ended and not self.to_job:
            os.close(self.input)
            self.input = None

    def _read_output(self, limit: int = 65536) -> bool:
        """Read what the job printed: to the log, the ring and the client. False at its end (or nothing now)."""
        assert self.output is not None
        try:
            data = os.read(self.output, limit)
        except BlockingIOError:
            return False
        except OSError as exc:  # EIO: no process holds the terminal any more
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            if self.output != self.input:
                os.close(self.output)
            self.output = None
            return False
        with contextlib.suppress(OSError):  # a full disk loses log lines, never the session
            os.write(self.log_fd, data)
        self.ring += data
        if len(self.ring) > RING_BYTES:
            del self.ring[: len(self.ring) - RING_BYTES]
        if self.greeted:  # a client that has not said hello gets this in its replay (ring or SYNC)
            self._send(frame(Kind.OUTPUT, data))
        return True

    def _send(self, data: bytes) -> None:
        if self.client is None:
            return
        self.to_client += data
        self._flush_client()

    def _flush_client(self) -> None:
        assert self.client is not None
        try:
            del self.to_client[: self.client.send(self.to_client)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # it went away: what it sent last may still be a signal for the job
            with contextlib.suppress(OSError):
                for kind, payload in self.reader.feed(self.client.recv(65536, socket.MSG_DONTWAIT)):
                    if kind is Kind.SIGNAL:
                        self._on_frame(kind, payload)
            self._drop_client()

    def _accept(self) -> bool:
        """Take a waiting connection (True), if there is one and its peer may attach."""
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, OSError):
            return False
        _, uid, _ = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        allowed = {0, os.geteuid(), *(() if self.owner is None else (self.owner[0],))}
        if uid not in allowed:
            with contextlib.suppress(OSError):
                conn.send(frame(Kind.REFUSED, b"only the job's owner and root can attach to its session"))
            conn.close()
            return True
        if self.client is not None:
            self._last_words(frame(Kind.TAKEN, b"attached from elsewhere"), 1.0)
        conn.setblocking(False)
        self.client, self.reader, self.greeted = conn, FrameReader(), False
        return True

    def _drop_client(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None
        self.to_client.clear()

    def _read_client(self) -> None:
        assert self.client is not None
        try:
            data = self.client.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_client()  # the client went away: detached
            return
        for kind, payload in self.reader.feed(data):
            self._on_frame(kind, payload)
        if self.reader.broken:
            self._drop_client()

    def _on_frame(self, kind: Kind, payload: bytes) -> None:
        if kind is Kind.INPUT and self.input is not None and len(self.to_job) < MAX_PENDING:
            self.to_job += payload
        elif kind in (Kind.HELLO, Kind.RESIZE):
            size = window(read_json(payload))
            if size is not None and self.mode == PTY and self.input is not None:
                set_window(self.input, *size)
            if kind is Kind.HELLO and read_json(payload).get("from_start") is True:
                self.greeted = True
                end = os.fstat(self.log_fd).st_size
                self._send(json_frame(Kind.SYNC, {"start": self.log_start, "end": end}))
            elif kind is Kind.HELLO:
                self._replay()
        elif kind is Kind.EOF and self.mode != PTY and self.input is not None:
            self.input_ended = True
            self._write_job()
        elif kind is Kind.SIGNAL and self.pgid is not None:
            number = read_json(payload).get("signal")
            if type(number) is int and number in SIGNALS:  # 2.0 is in the set, but killpg raises on it (R5)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pgid, number)
        elif kind is Kind.DETACH:
            self._drop_client()

    def finish(self, exit_code: int | None, signum: int | None) -> None:
        """The job has ended: the rest of its output, then its exit status to the client; close everything."""
        for _ in range(256):  # at most 16 MiB more
            if self.output is None or not self._read_output():
                break
            if len(self.to_client) >= HIGH_WATER:
                self._flush_waiting(2.0)
        while self._accept():  # a client that connected as the job ended still hears how it ended
            pass
        deadline = time.monotonic() + 1.0
        while self.client is not None and not self.greeted and time.monotonic() < deadline:
            ready, _, _ = select.select([self.client], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                self._read_client()  # its HELLO: which replay it wants
        if not self.greeted:
            self._replay()
        self._last_words(json_frame(Kind.EXIT, {"exit_code": exit_code, "signal": signum}), 2.0)
        self.close()

    def _replay(self) -> None:
        """The ring to a client that just said hello, from the first whole line."""
        self.greeted = True
        if self.ring:
            cut = self.ring.find(b"\n") + 1 if len(self.ring) >= RING_BYTES else 0
            self._send(frame(Kind.OUTPUT, bytes(self.ring[cut:])))

    def _last_words(self, data: bytes, timeout_s: float) -> None:
        """What is owed to the client, then ``data``, waiting up to ``timeout_s`` for it to read; then drop it."""
        self.to_client += data
        self._flush_waiting(timeout_s)
        self._drop_client()

    def _flush_waiting(self, timeout_s: float) -> None:
        """Send what is owed to the client, waiting up to ``timeout_s`` for it to read (else drop it)."""
        if self.client is None:
            return
        try:
            self.client.settimeout(timeout_s)
            self.client.sendall(self.to_client)
            self.client.setblocking(False)
            self.to_client.clear()
        except OSError:
            self._drop_client()

    def close(self) -> None:
        """Close the socket (and remove it), the terminal or pipes, the client, the log."""
        self._drop_client()
        self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        for fd in {*self.child_fds, self.input, self.output, self.log_fd}:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.child_fds, self.input, self.output = (), None, None
