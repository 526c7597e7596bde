"""What a process may take from an environment cache other users can write (U2).

A cache that others may write (a node's ``TUXAI_ENV_CACHE`` made 1777) is never used flat: each user
builds in ``<cache>/<uid>/``, a directory they made, own and alone may write; one owned by anybody
else (planted there first) is not used, and the user's own cache (``~/.cache/tuxai/envs``) is taken
instead. An environment is reused only when its directory is the caller's or root's and nobody else
may write it; a file kept there (a lockfile's text, pip's settings) is read by descriptor, without
following a link, only when it is the caller's, and written through a fresh name (``mkstemp``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

READY = ".tuxai-ready"


def _private(st: os.stat_result, owners: tuple[int, ...]) -> bool:
    return st.st_uid in owners and not st.st_mode & 0o022


def own_dir(path: Path, uid: int) -> bool:
    """Whether ``path`` is a real directory (not a link) owned by ``uid`` that nobody else may write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _private(st, (uid,))


def _fixed(folder: Path) -> bool:
    """Whether nobody but its owner (and root) can rename what is in ``folder``: not writable by
    others, or sticky."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and (not st.st_mode & 0o022 or bool(st.st_mode & stat.S_ISVTX))


def trusted_env(env: Path) -> bool:
    """Whether a built environment may be reused by this process: its ready mark a plain file, its
    directory the caller's or root's, written by nobody else, in a folder of the caller's or root's that
    nobody else can swap it in."""
    try:
        st, mark, folder = os.lstat(env), os.lstat(env / READY), os.lstat(env.parent)
    except OSError:
        return False
    owners = (os.geteuid(), 0)
    mine = stat.S_ISDIR(st.st_mode) and _private(st, owners) and stat.S_ISREG(mark.st_mode)
    return mine and folder.st_uid in owners and _fixed(env.parent)


def user_cache(shared: Path, environ: Mapping[str, str]) -> Path:
    """Where this user builds environments: ``shared`` (the daemon's ``<home>/envs``) when it is theirs
    alone; ``<shared>/<uid>`` (made now, theirs alone) when others may write ``shared`` too; else their own
    cache: ``$XDG_CACHE_HOME/tuxai/envs``, ``~/.cache/tuxai/envs``."""
    uid = os.geteuid()
    nearest = shared
    while not os.path.lexists(nearest) and nearest != nearest.parent:
        nearest = nearest.parent  # the nearest directory that exists decides whether it can be made
    if own_dir(nearest, uid) and _fixed(nearest.parent):
        return shared  # theirs alone (or made under a directory that is)
    mine = shared / str(uid)
    if nearest == shared and _fixed(shared) and os.access(shared, os.W_OK | os.X_OK):
        with contextlib.suppress(OSError):
            os.mkdir(mine, 0o755)
        if own_dir(mine, uid):
            return mine
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "tuxai" / "envs"


def read_own(path: Path) -> bytes | None:
    """The bytes of ``path`` when it is a plain file of the caller's that nobody else may write,
    opened without following a link; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode) or not _private(st, (os.geteuid(),)):
            return None
        return file.read()


def write_new(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` atomically, through a fresh file of a name nobody could guess (0644).

    Raises:
        OSError: the folder cannot be written.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o644)
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
