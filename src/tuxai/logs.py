"""How tuxai's servers (the daemon, the model server) log: the standard ``logging`` module, one
record per line on stderr, never coloured.

    2025-05-01 12:00:00,123 INFO tuxai.daemon: daemon 42 up: …     on a terminal or into a file
    <6>INFO tuxai.daemon: daemon 42 up: …                          into journald (systemd)

journald stamps each line itself and reads a leading ``<N>`` as the line's syslog priority, so
under it (``$JOURNAL_STREAM`` names our stderr, as systemd sets it) the time is left out and
the priority put in. uvicorn's loggers write through the same handler.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_PLAIN = "%(levelname)s %(name)s: %(message)s"
_STAMPED = "%(asctime)s " + _PLAIN


class JournalFormatter(logging.Formatter):
    """A record as journald wants it: ``<priority>`` first, no time; a traceback's lines each prefixed too."""

    def format(self, record: logging.LogRecord) -> str:
        """``<3>ERROR tuxai.daemon: tick failed`` (and ``<3>Traceback …`` for each line that follows)."""
        priority = _PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


def under_journald(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Whether ``stream`` is the journal stream systemd gave us (``JOURNAL_STREAM=device:inode``)."""
    named = env.get("JOURNAL_STREAM", "")
    if not named:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return named == f"{info.st_dev}:{info.st_ino}"


def configure_logging(level: str, stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> None:
    """Send every logger's records at ``level`` or above to ``stream`` (stderr), one line each.

    Replaces the handlers of the root logger, so calling it twice does not print lines twice.
    """
    stream = sys.stderr if stream is None else stream
    env = os.environ if env is None else env
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter(_PLAIN) if under_journald(stream, env) else logging.Formatter(_STAMPED))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
