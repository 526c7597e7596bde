"""The real daemon process reads its settings from flags, TUXAI_* variables and the config file's
`daemon:` keys, refuses a bad one in one line (exit 2) naming where it came from, and logs through
`logging`: with the time into a file, plain with the priority for journald, at --log-level."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import TWO_GPUS, kill_leftovers
from tuxai.api.client import Client
from tuxai.errors import DaemonError

DAEMON = [sys.executable, "-m", "tuxai.api.server"]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUXAI_") and k != "JOURNAL_STREAM"}
    return {**env, **extra}


@contextlib.contextmanager
def running(home: Path, log: Path, *flags: str, **env: str) -> Iterator[Client]:
    """A daemon on ``home`` whose stderr is ``log``, until the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as stderr:
        process = subprocess.Popen(
            [*DAEMON, "--home", str(home), "--inventory", str(TWO_GPUS), *flags],
            stdout=stderr, stderr=stderr, env=_environment(**env), start_new_session=True,
        )  # fmt: skip
    client = Client.for_home(home, timeout_s=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(DaemonError):
                client.health()
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield client
    finally:
        with contextlib.suppress(DaemonError):
            client.shutdown()
        process.wait(timeout=20)
        kill_leftovers(home)
        client.close()


def refused(home: Path, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The daemon run with ``flags`` and ``env``, expected to exit at once."""
    argv = [*DAEMON, "--home", str(home), "--inventory", str(TWO_GPUS), "--metrics-addr", "127.0.0.1:0", *flags]
    return subprocess.run(argv, capture_output=True, text=True, env=_environment(**env), timeout=60, check=False)


def _journal(path: Path) -> str:
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}"


def test_a_config_file_and_variables_set_the_daemon_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("daemon:\n  metrics_addr: 127.0.0.1:1\n  private_queue: true\n  log_level: warning\n")
    log = tmp_path / "daemon.log"
    env = {"TUXAI_CONFIG": str(config), "TUXAI_METRICS_ADDR": "127.0.0.1:2"}
    with running(tmp_path / "home", log, "--metrics-addr", "127.0.0.1:0", **env):
        address = (tmp_path / "home" / "metrics.addr").read_text().strip()
    port = int(address.rpartition(":")[2])
    assert port not in (0, 1, 2)  # the flag's any-port, over the variable's 2, over the file's 1
    text = log.read_text()
    assert "up:" not in text  # the file's log_level: warning hid the INFO line


@pytest.mark.parametrize(
    ("flags", "env", "file", "message"),
    [
        (("--tick-period", "soon"), {}, "", "error: --tick-period must be a duration above 0"),
        (("--log-level", "loud"), {}, "", "error: --log-level must be one of debug, info, warning, error"),
        ((), {"TUXAI_JOB_PIDS_MAX": "lots"}, "", "error: TUXAI_JOB_PIDS_MAX must be an integer ≥ 0, got 'lots'"),
        ((), {}, "daemon:\n  on_hung: kill\n", "error: {config}: daemon.on_hung must be one of none, cancel"),
        (("--no-such-flag",), {}, "", "error: unrecognized arguments: --no-such-flag"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_source_and_exit_2(
    tmp_path: Path, flags: tuple[str, ...], env: dict[str, str], file: str, message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(file)
    done = refused(tmp_path / "home", *flags, TUXAI_CONFIG=str(config), **env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(message.format(config=config)), done.stderr
    assert not (tmp_path / "home").exists()  # refused before the home was made


def test_log_lines_have_their_time_in_a_file_and_not_in_the_journal(tmp_path: Path) -> None:
    stamped, journal = tmp_path / "stamped.log", tmp_path / "journal.log"
    with running(tmp_path / "a", stamped, "--metrics-addr", "127.0.0.1:0"):
        pass
    up = next(line for line in stamped.read_text().splitlines() if "tuxai daemon" in line and " up: " in line)
    assert up[:2] == "20" and " INFO tuxai.daemon: tuxai daemon " in up  # 2025-… the time first
    journal.touch()
    with running(tmp_path / "b", journal, "--metrics-addr", "127.0.0.1:0", JOURNAL_STREAM=_journal(journal)):
        pass
    lines = journal.read_text().splitlines()
    assert any(line.startswith("<6>INFO tuxai.daemon: tuxai daemon ") for line in lines), lines
    assert all(line.startswith("<") for line in lines), lines  # every line a record with its priority
    assert "\x1b" not in journal.read_text()


def test_log_level_debug_shows_more(tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    with running(tmp_path / "home", log, "--metrics-addr", "127.0.0.1:0", "--log-level", "debug"):
        pass
    assert " DEBUG tuxai.daemon: settings: DaemonSettings(" in log.read_text()
