"""The daemon's home: checked before anything is made in it; its own files made without following links.

A root daemon that writes in a directory somebody else can change follows their planted
links as root. So the home must be a real directory (not a symbolic link) owned by the
daemon's user and writable by nobody else, under directories only root or that user can
change (or sticky ones, like /tmp). Then its own files are opened ``O_NOFOLLOW`` and made
0600; the home is 0711 under root (users reach the API socket, but cannot list the home) and
0700 otherwise.

    <home>/daemon.lock   flock held by the daemon; its pid        0600
    <home>/token         bearer token for TCP                      0600
    <home>/tcp.addr, metrics.addr                                   0600
    <home>/tuxai.db      the store (and its -wal, -shm)             0600
    <home>/tuxai.sock    the API: 0666 under root, else 0600; notify.sock 0600 (shims run as the daemon)

``tuxai up`` checks the home the same way before it writes ``daemon.log``; ``tuxai down``
reads the pid from ``daemon.lock`` and waits for the lock (``wait_stopped``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import socket
import stat
import tempfile
import time
from pathlib import Path

from tuxai.errors import DaemonError, UsageError

LOCK = "daemon.lock"
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def _who(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _writable_by_others(info: os.stat_result) -> str:
    who = [name for bit, name in ((stat.S_IWGRP, "its group"), (stat.S_IWOTH, "everybody")) if info.st_mode & bit]
    return " and ".join(who)


def check_home(home: Path, uid: int | None = None) -> Path:
    """The home as a real path, made if missing (0711 under root, else 0700), once it is safe to use.

    Raises:
        UsageError: the home is a symbolic link or not a directory, belongs to another user or
            is writable by others, or sits under a directory another user can change.
    """
    uid = os.geteuid() if uid is None else uid
    given = Path(os.path.abspath(home.expanduser()))
    if given.is_symlink():
        real = os.path.realpath(given)
        raise UsageError(
            f"the home {given} is a symbolic link (to {real}): the daemon follows no link in its home",
            hint=f"pass the directory itself: --home {real}",
        )
    real_home = Path(os.path.realpath(given))
    for above in reversed(real_home.parents):
        with contextlib.suppress(FileNotFoundError):
            info = os.stat(above)
            if info.st_uid not in (0, uid):
                raise UsageError(
                    f"{above}, above the home {real_home}, belongs to {_who(info.st_uid)}: they could swap the home",
                    hint="put the home under directories only you or root can change (--home)",
                )
            if _writable_by_others(info) and not info.st_mode & stat.S_ISVTX:
                raise UsageError(
                    f"{above}, above the home {real_home}, is writable by {_writable_by_others(info)}: "
                    "anybody could swap the home",
                    hint=f"chmod go-w {above}, or pass another --home",
                )
    mode = 0o711 if uid == 0 else 0o700
    try:
        real_home.mkdir(parents=True, mode=mode)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UsageError(f"cannot make the home {real_home}: {exc.strerror}", hint="pass another --home") from None
    fd = os.open(real_home, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    try:
        info = os.fstat(fd)
        if info.st_uid != uid:
            raise UsageError(
                f"the home {real_home} belongs to {_who(info.st_uid)}, not to the daemon's user ({_who(uid)})",
                hint=f"pass a home of your own (--home), or `chown {uid} {real_home}` if it is yours",
            )
        if _writable_by_others(info):
            raise UsageError(
                f"the home {real_home} is writable by {_writable_by_others(info)} "
                f"(mode {stat.S_IMODE(info.st_mode):o})",
                hint=f"chmod go-w {real_home}",
            )
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return real_home


def open_private(path: Path, flags: int, mode: int = 0o600) -> int:
    """A descriptor on the regular file ``path`` of the home, never through a link; 0600, ours.

    Raises:
        OSError: a link is there (``ELOOP``), or something that is not our regular file.
    """
    fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK, mode)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise OSError(errno.EPERM, f"{path} is not a regular file of uid {os.geteuid()}", str(path))
        if flags & (os.O_WRONLY | os.O_RDWR):
            os.fchmod(fd, mode)
        os.set_blocking(fd, True)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, text: str) -> None:
    """Make the home's file ``path`` anew (0600) with ``text``; whatever was there (a link too) goes."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def read_private(path: Path) -> str:
    """The contents of the home's file ``path`` (not through a link)."""
    with os.fdopen(open_private(path, os.O_RDONLY), "r") as handle:
        return handle.read()


def prepare_store(path: Path) -> None:
    """Make the store's file 0600 (new or old), and refuse a link in place of it or of its -wal, -shm.

    SQLite opens by name and follows links; checked here, in a home nobody else can write to,
    nobody can put one there after.
    """
    os.close(open_private(path, os.O_RDWR | os.O_CREAT))
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.close(open_private(Path(f"{path}{suffix}"), os.O_RDWR))


def unix_socket(path: Path, kind: socket.SocketKind, mode: int) -> socket.socket:
    """A Unix socket bound at ``path`` with ``mode``: bound and chmod'ed in a private directory,
    then renamed into place, so no link is followed and no other thread's umask changes."""
    private = Path(tempfile.mkdtemp(prefix=".bind-", dir=path.parent))
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        sock.bind(str(private / "s"))
        os.chmod(private / "s", mode)
        os.rename(private / "s", path)  # replaces what a killed daemon left
    except OSError:
        sock.close()
        raise
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(private)
    return sock


def lock_home(home: Path) -> int:
    """Take ``<home>/daemon.lock`` (one daemon per home) and write our pid in it; the descriptor.

    Raises:
        DaemonError: another daemon holds it.
    """
    fd = open_private(home / LOCK, os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode().strip() or "?"
        os.close(fd)
        raise DaemonError(f"a tuxai daemon already runs for {home} (pid {pid})", hint="`tuxai down` stops it") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _started(pid: int) -> str | None:
    """The start time of process ``pid`` (field 22 of /proc/PID/stat); None if gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def daemon_pid(home: Path) -> int | None:
    """The pid written in ``<home>/daemon.lock`` (None: no lock file, or unreadable)."""
    try:
        text = read_private(home / LOCK).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def wait_stopped(home: Path, pid: int | None, timeout_s: float) -> None:
    """Wait until the daemon of ``home`` released its lock (its store closed) and process ``pid`` is gone.

    Raises:
        DaemonError: still there after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    started = _started(pid) if pid else None
    try:
        fd = open_private(home / LOCK, os.O_RDONLY)
    except OSError:  # none (it never locked), or not ours to read: the pid alone says
        fd = -1
    try:
        while fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DaemonError(
                        f"the daemon (pid {pid or '?'}) still holds {home / LOCK} after {timeout_s:g} s: "
                        "it has not closed its store yet",
                        hint=f"wait, or see {home / 'daemon.log'}; `kill {pid or 'PID'}` if it hangs",
                    ) from None
                time.sleep(0.02)
    finally:
        if fd >= 0:
            os.close(fd)
    while pid and started is not None and _started(pid) == started:
        if time.monotonic() > deadline:
            raise DaemonError(f"the daemon (pid {pid}) has not exited after {timeout_s:g} s", hint=f"kill {pid}")
        time.sleep(0.01)
