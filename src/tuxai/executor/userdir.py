"""A job's working directory as its user reached it, bound where root's podman mounts it from (security issue S10).

Root's podman mounts a path, and a path is read again when it mounts: a user who swaps one of
its own directories for a link between tuxai's check and podman's mount would have root mount
what the link names. So the check and the mount share one open descriptor instead:

1. a child that is the job's user enters the directory and opens it (``O_PATH``); the
   descriptor's own path must be the one asked for (no link on the way), else refused;
2. the descriptor comes back to root over a socket pair (``SCM_RIGHTS``), and root binds
   ``/proc/self/fd/N`` — the kernel follows that link to the very directory the user opened,
   never to a path — onto ``/run/tuxai/workdirs/<container>`` (root's, 0700), with what is
   mounted below it, as podman's own bind of the path would;
3. podman mounts that bind; ``unbind`` undoes it with the container (``podman.remove_container``).

Whatever the user renames or links afterwards, the container gets the directory that was checked.

A served model (``submit --serve MODEL --image``) goes in the same way (``bind_model``): opened for
reading by the user (a file or a repository directory, through no link), bound at
``<container>.model`` beside it, mounted read-only; ``unbind`` undoes both.

The MPS server's pipe directory (a GPU-share job, ``bind_trusted``) is root's, not the user's: walked
from ``/`` through no link, every component root's and writable by no one else (U1), bound at
``<container>.mps``; a folder another user made at that path is never mounted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import stat
import subprocess
from pathlib import Path

WORKDIRS = Path("/run/tuxai/workdirs")
MODEL = ".model"  # a served model's bind: WORKDIRS/<container>.model
MPS = ".mps"  # the MPS pipe directory's bind: WORKDIRS/<container>.mps
MS_BIND, MS_REC = 4096, 16384
MNT_DETACH = 2
_LIBC = ctypes.CDLL(None, use_errno=True)


def open_as(user: tuple[int, int, tuple[int, ...]], directory: str, read: bool = False) -> int:
    """A descriptor (``O_PATH``) of ``directory`` opened by a child that is ``user``, through no link;
    ``read``: a file or directory the user can read (``O_RDONLY``), as a served model.

    Raises:
        SubprocessError: the user cannot enter it, or reaches it through a link (says why).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the child: become the user, open, send the descriptor or say why not
        code = 1
        try:
            ours.close()
            os.setgroups(list(user[2]))
            os.setgid(user[1])
            os.setuid(user[0])
            if read:  # a model: the user must be able to read it, a file or a directory, nothing else
                fd = os.open(directory, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
                if not (stat.S_ISREG(os.fstat(fd).st_mode) or stat.S_ISDIR(os.fstat(fd).st_mode)):
                    raise OSError(0, "it is neither a file nor a directory")
            else:
                os.chdir(directory)
                fd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            if os.readlink(f"/proc/self/fd/{fd}") != os.path.normpath(directory):
                theirs.sendall(b"it is reached through a link")
            else:
                socket.send_fds(theirs, [b"="], [fd])
                code = 0
        except OSError as exc:
            theirs.sendall((exc.strerror or str(exc)).encode())
        finally:
            os._exit(code)
    theirs.close()
    with ours:
        message, fds, _, _ = socket.recv_fds(ours, 4096, 1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0 and message == b"=" and len(fds) == 1:
        return fds[0]
    for fd in fds:
        os.close(fd)
    why = message.decode(errors="replace") if message != b"=" else ""
    what = f"cannot read model {directory}" if read else f"cannot enter working directory {directory}"
    raise subprocess.SubprocessError(f"{what} as the job's user: {why or 'it cannot be opened'}")


def bind(user: tuple[int, int, tuple[int, ...]], directory: str, name: str) -> Path:
    """Bind ``directory``, as ``user`` opened it, at ``WORKDIRS/name``: the path podman mounts from.

    Raises:
        SubprocessError: the user cannot enter it through no link, or the bind failed.
    """
    unbind(name)  # what a killed attempt of this name left
    return _bind(open_as(user, directory), WORKDIRS / name, f"working directory {directory}")


def bind_model(user: tuple[int, int, tuple[int, ...]], model: str, name: str) -> Path:
    """Bind the model file or repository ``model``, as ``user`` opened it for reading, at
    ``WORKDIRS/name.model`` (podman mounts it read-only).

    Raises:
        SubprocessError: the user cannot read it through no link, or the bind failed.
    """
    return _bind(open_as(user, model, read=True), WORKDIRS / f"{name}{MODEL}", f"model {model}")


def open_trusted(path: str, what: str, owners: frozenset[int] = frozenset({0})) -> int:
    """A descriptor (``O_PATH``) of the directory ``path``, walked from ``/`` one component at a time
    through no link, each one owned by one of ``owners`` and writable by no one else (a sticky one such
    as /tmp only above the last: there no one else can rename what ``owners`` made).

    Raises:
        SubprocessError: a component is a link, missing, not a directory, another user's or writable by
            others (one line: ``what``, the path and the reason).
    """
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise subprocess.SubprocessError(f"{what} {path}: not a plain absolute path")
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    parts, here = Path(path).parts[1:], "/"
    try:
        for depth, part in enumerate(("", *parts)):
            here = os.path.join(here, part)
            if part:
                at, fd = fd, -1
                try:
                    fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=at)
                finally:
                    os.close(at)
            _check_trusted(os.fstat(fd), owners, last=depth == len(parts))
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        reason = "a link or not a directory" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror or exc
        reason = "not there" if exc.errno == errno.ENOENT else reason
        raise subprocess.SubprocessError(f"{what} {path}: {here} is {reason}") from None
    return fd


def _check_trusted(info: os.stat_result, owners: frozenset[int], last: bool) -> None:
    if info.st_uid not in owners:
        raise OSError(0, f"owned by uid {info.st_uid}, not root's")
    if info.st_mode & 0o022 and (last or not info.st_mode & stat.S_ISVTX):
        raise OSError(0, "writable by other users")


def bind_trusted(directory: str, name: str, what: str) -> Path:
    """Bind root's ``directory`` (``open_trusted``) at ``WORKDIRS/name.mps``: the path podman mounts from.

    Raises:
        SubprocessError: it is not root's through no link, or the bind failed.
    """
    return _bind(open_trusted(directory, what), WORKDIRS / f"{name}{MPS}", f"{what} {directory}")


def _bind(fd: int, target: Path, what: str) -> Path:
    """Bind what ``fd`` is at ``target`` (a directory or a file made for it); ``fd`` closed.

    Raises:
        SubprocessError: the bind failed (``target`` removed).
    """
    try:
        WORKDIRS.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            target.mkdir(mode=0o700)
        else:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        if _LIBC.mount(f"/proc/self/fd/{fd}".encode(), str(target).encode(), None, MS_BIND | MS_REC, None) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except OSError as exc:
        _unbind(target)
        raise subprocess.SubprocessError(f"cannot bind {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return target


def unbind(name: str) -> None:
    """Undo ``bind``, ``bind_model`` and ``bind_trusted`` (best effort; nothing bound: nothing done).
    The container keeps its mounts."""
    _unbind(WORKDIRS / name)
    _unbind(WORKDIRS / f"{name}{MODEL}")
    _unbind(WORKDIRS / f"{name}{MPS}")


def _unbind(target: Path) -> None:
    if not os.path.lexists(target):
        return
    _LIBC.umount2(str(target).encode(), MNT_DETACH)
    with contextlib.suppress(OSError):
        if target.is_dir() and not target.is_symlink():
            target.rmdir()
        else:
            target.unlink()
