"""How the daemon and the model server log (tuxai.logs): a time on each line, except under
journald, which stamps lines itself and reads the <priority> prefix; no colour; the level set."""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuxai.logs import configure_logging, under_journald


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _journal(path: Path) -> dict[str, str]:
    info = os.stat(path)
    return {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}


def test_lines_carry_their_time_and_level_on_a_terminal_or_a_file() -> None:
    stream = io.StringIO()
    configure_logging("info", stream, env={})
    logging.getLogger("tuxai.daemon").info("up on %s", "tuxai.sock")
    logging.getLogger("tuxai.daemon").debug("not shown at info")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" INFO tuxai.daemon: up on tuxai.sock\n", stream.getvalue())


def test_under_journald_no_time_and_the_priority_first(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    with open(path, "w") as stream:
        assert under_journald(stream, _journal(path))
        assert not under_journald(stream, {"JOURNAL_STREAM": "1:2"})  # another stream: a redirected stderr
        configure_logging("debug", stream, env=_journal(path))
        log = logging.getLogger("tuxai.daemon")
        log.debug("tick")
        log.warning("no Prometheus endpoint")
        try:
            raise OSError("disk full")
        except OSError:
            log.exception("tick failed")
    lines = path.read_text().splitlines()
    assert lines[:3] == [
        "<7>DEBUG tuxai.daemon: tick",
        "<4>WARNING tuxai.daemon: no Prometheus endpoint",
        "<3>ERROR tuxai.daemon: tick failed",
    ]
    assert lines[3] == "<3>Traceback (most recent call last):" and lines[-1] == "<3>OSError: disk full"
    assert "\x1b" not in path.read_text()


def test_configuring_twice_writes_each_line_once() -> None:
    stream = io.StringIO()
    configure_logging("warning", stream, env={})
    configure_logging("warning", stream, env={})
    logging.getLogger("uvicorn.error").warning("once")
    logging.getLogger("tuxai").info("below the level")
    assert stream.getvalue().count("once") == 1 and "below" not in stream.getvalue()
