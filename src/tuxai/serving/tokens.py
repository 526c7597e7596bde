"""The model server's bearer token: the operator's (``--token-file``), or one the server makes for
repository control when it serves loopback without one.

A made token goes where only the server's user can read it, and is removed when the server stops:

    $XDG_RUNTIME_DIR/tuxai/serve-<port>.token        (a directory of ours, mode 0700)
    /tmp/tuxai-serve-XXXXXXXX/serve-<port>.token     (a fresh 0700 directory when there is no runtime dir)

The file is created with ``O_EXCL | O_NOFOLLOW`` and mode 0600, inside the directory opened
with ``O_NOFOLLOW``, so nobody can point it elsewhere or read it first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tuxai.errors import UsageError


def read_token_file(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace dropped).

    Raises:
        UsageError: the file cannot be read, or is empty.
    """
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read --token-file {path}: {exc.strerror}", hint="check the path") from None
    if not token:
        raise UsageError(f"--token-file {path} is empty", hint="put a long random string in it")
    return token


@dataclass(frozen=True)
class ControlToken:
    """A token the server made, and the file it wrote it to."""

    token: str
    path: Path
    own_directory: bool  # the directory was made for this file alone: it goes too

    def remove(self) -> None:
        """Remove the file (and its directory when made for it); already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.own_directory:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()


def _runtime_directory(environ: Mapping[str, str]) -> tuple[Path, bool]:
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if not runtime or not os.path.isdir(runtime):
        return Path(tempfile.mkdtemp(prefix="tuxai-serve-")), True
    base = Path(runtime) / "tuxai"
    with contextlib.suppress(OSError):  # there already, or cannot be made: opening it says which
        base.mkdir(mode=0o700)
    return base, False


def make_control_token(port: int, environ: Mapping[str, str]) -> ControlToken:
    """A new token in ``serve-<port>.token`` under the runtime directory (see the module's docstring).

    Raises:
        UsageError: the directory is a symbolic link, not ours, or open to others; the file cannot be written.
    """
    directory, own = _runtime_directory(environ)
    token = secrets.token_urlsafe(32)
    name = f"serve-{port}.token"
    try:
        folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(directory):
            raise UsageError(f"{directory} is a symbolic link: the control token goes only into a directory of ours",
                             hint=f"remove {directory}") from None  # fmt: skip
        raise UsageError(f"cannot open {directory} for the control token: {exc.strerror}", hint="check it") from None
    try:
        info = os.fstat(folder)
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise UsageError(
                f"{directory} must be yours with mode 0700 to hold the control token "
                f"(it is uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o})",
                hint=f"chmod 0700 {directory}, or remove it",
            )
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, 0o600, dir_fd=folder)
        except FileExistsError:  # left by a server that died on this port; the directory is ours alone
            os.unlink(name, dir_fd=folder)
            fd = os.open(name, flags, 0o600, dir_fd=folder)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write the control token in {directory}: {exc.strerror}", hint="check it") from None
    finally:
        os.close(folder)
    return ControlToken(token, directory / name, own)
