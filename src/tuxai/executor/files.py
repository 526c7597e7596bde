"""Files a root process makes for a user, or reads from where a user can write, safely.

The rule (docs/security.md): a root process never follows a link or opens a FIFO in a place
a user controls, never reads more than it needs, and creates a user's files itself, with
the mode and owner it means, under a directory only it can change. Every open here is
``O_NOFOLLOW`` (a planted symlink fails with ``ELOOP``) and ``O_NONBLOCK`` (a FIFO never
blocks), then checked with ``fstat`` on the descriptor it got (no check-then-open race).

    <home>/jobs/          0711 daemon's owner  (users cross it to their own job directories)
    <home>/jobs/<id>/     0711 daemon's owner  (the user cannot rename or plant anything here)
        output.log        0600 the job's user
        checkpoint/       0700 the job's user
        endpoint          0600 the job's user  (a served model's URL, fresh each attempt)
        run-<n>/          0700 daemon's owner  (launch.json holds the job's environment)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

User = tuple[int, int] | None  # (uid, gid) to own what is made; None: the process's own
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _chown(fd: int, user: User) -> None:
    if user is not None and os.geteuid() == 0:
        os.fchown(fd, user[0], user[1])


def make_dir(path: Path, mode: int, user: User = None, exclusive: bool = False) -> None:
    """Create directory ``path`` (or take the one there) with ``mode``, owned by ``user``.

    Raises:
        FileExistsError: ``exclusive`` and it exists.
        OSError: it is a link or not a directory (``ELOOP``, ``ENOTDIR``), or cannot be made.
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if exclusive:
            raise
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    try:
        _chown(fd, user)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def open_user_file(path: Path, user: User, mode: int = 0o600, fresh: bool = False) -> int:
    """A descriptor for appending to the regular file ``path``, made (if new) as ``user``'s.

    ``fresh``: remove whatever is there first and create it anew (``O_EXCL``).

    Raises:
        OSError: a link, a FIFO or anything but a regular file is there (``EINVAL``).
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | (os.O_EXCL if fresh else 0)
    for tries_left in range(4, -1, -1) if fresh else (0,):
        if fresh:  # a gang's ranks sharing the job's directory make its endpoint at once: the loser goes again
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        try:
            fd = os.open(path, flags, mode)
            break
        except FileExistsError:
            if not tries_left:
                raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        if user is not None and info.st_uid not in (user[0], os.geteuid()):
            raise OSError(errno.EPERM, f"{path} belongs to uid {info.st_uid}")
        _chown(fd, user)
        os.fchmod(fd, mode)
        os.set_blocking(fd, True)
    except OSError:
        os.close(fd)
        raise
    return fd


def read_user_file(
    path: Path, owners: tuple[int, ...], limit_bytes: int, offset: int = 0, dir_fd: int | None = None
) -> bytes | None:
    """Up to ``limit_bytes`` of the regular file ``path`` from ``offset``, if one of ``owners`` owns it.

    None when it is missing, a link, a FIFO, a device, a directory, or somebody else's: the
    caller shows nothing rather than whatever a user pointed it at. Never blocks. ``dir_fd``:
    ``path`` is a name in that open directory (a user's directory opened without following a link).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid not in owners:
            return None
        return os.pread(fd, limit_bytes, offset)
    except OSError:
        return None
    finally:
        os.close(fd)
