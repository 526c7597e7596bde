"""``tuxai image build``'s input files, each read once (U3): copied by descriptor (no link followed) into
the build's own folder and hashed as they are copied, so the image key names the bytes built from — a file
swapped after it was read changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from tuxai.errors import UsageError


def copy_in(source: Path, folder: Path, flag: str, name: str = "") -> tuple[Path, str]:
    """``source`` copied to ``folder/<name or its own name>`` in one read: the copy and its sha256.

    Raises:
        UsageError: it is a link, not a plain file, or cannot be read (one line, the flag and why).
    """
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        why = "a link (give the file itself)" if os.path.islink(source) else exc.strerror
        raise UsageError(f"{flag} {source}: {why}", hint="give a plain file of yours") from None
    digest = hashlib.sha256()
    copy = folder / (name or source.name)
    with os.fdopen(fd, "rb") as file, open(copy, "xb") as out:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise UsageError(f"{flag} {source}: not a plain file", hint="give a plain file of yours")
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    return copy, digest.hexdigest()
