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
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import stat
import subprocess
from pathlib import Path

WORKDIRS = Path("/run/tuxai/workdirs")
MODEL = ".model"  # a served model's bind: WORKDIRS/<container>.model
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
    """Undo ``bind`` and ``bind_model`` (best effort; nothing bound: nothing done). The container keeps its mounts."""
    _unbind(WORKDIRS / name)
    _unbind(WORKDIRS / f"{name}{MODEL}")


def _unbind(target: Path) -> None:
    if not os.path.lexists(target):
        return
    _LIBC.umount2(str(target).encode(), MNT_DETACH)
    with contextlib.suppress(OSError):
        if target.is_dir() and not target.is_symlink():
            target.rmdir()
        else:
            target.unlink()
