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
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
from pathlib import Path

WORKDIRS = Path("/run/tuxai/workdirs")
MS_BIND, MS_REC = 4096, 16384
MNT_DETACH = 2
_LIBC = ctypes.CDLL(None, use_errno=True)


def open_as(user: tuple[int, int, tuple[int, ...]], directory: str) -> int:
    """A descriptor (``O_PATH``) of ``directory`` opened by a child that is ``user``, through no link.

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
    raise subprocess.SubprocessError(
        f"cannot enter working directory {directory} as the job's user: {why or 'it cannot be entered'}"
    )


def bind(user: tuple[int, int, tuple[int, ...]], directory: str, name: str) -> Path:
    """Bind ``directory``, as ``user`` opened it, at ``WORKDIRS/name``: the path podman mounts from.

    Raises:
        SubprocessError: the user cannot enter it through no link, or the bind failed.
    """
    fd = open_as(user, directory)
    target = WORKDIRS / name
    try:
        unbind(name)  # what a killed attempt of this name left
        WORKDIRS.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.mkdir(mode=0o700)
        if _LIBC.mount(f"/proc/self/fd/{fd}".encode(), str(target).encode(), None, MS_BIND | MS_REC, None) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except OSError as exc:
        unbind(name)
        raise subprocess.SubprocessError(f"cannot bind working directory {directory}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return target


def unbind(name: str) -> None:
    """Undo ``bind`` (best effort; nothing bound: nothing done). The container keeps its own mount."""
    target = WORKDIRS / name
    if not target.is_dir():
        return
    _LIBC.umount2(str(target).encode(), MNT_DETACH)
    with contextlib.suppress(OSError):
        target.rmdir()
