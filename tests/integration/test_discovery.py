"""One daemon per server, found by everyone: a user who runs no daemon of their own and names no
home reaches the system daemon (``/var/lib/tuxai``; here ``$TUXAI_SYSTEM_HOME``, never the real
one), is told which daemon answers, and, with none running, sees every place that was tried.

The CLI runs as ``nobody`` under the system's Python with this checkout on ``PYTHONPATH`` (the
test interpreter lives under /root, which nobody may not enter), as test_daemon_security runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, finish
from tests.integration import test_daemon_security as security
from tuxai.api.client import Client
from tuxai.errors import DaemonError

base = security.base  # a directory nobody may cross (pytest's tmp_path is private to root)


@pytest.fixture
def system_daemon(base: Path) -> Iterator[DaemonProcess]:
    """A root daemon on the system home of these tests."""
    process = DaemonProcess(base / "system").start()
    try:
        yield process
    finally:
        finish(process)


def nobody(base: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``tuxai ARGS`` as uid 65534, with ``$TUXAI_SYSTEM_HOME`` at ``base/system`` and no home of its own."""
    if os.getuid() != 0:
        pytest.skip("needs root: the system daemon runs as root and the user as nobody")
    environment = {"HOME": "/nonexistent", "COLUMNS": "200", "TUXAI_SYSTEM_HOME": str(base / "system"), **env}
    return security.as_nobody([security.SYSTEM_PYTHON, "-m", "tuxai", *args], env=environment)


def test_a_user_without_a_daemon_of_their_own_reaches_the_system_daemon(
    base: Path, system_daemon: DaemonProcess
) -> None:
    done = nobody(base, "submit", "--json", "--name", "theirs", "--", "id", "-u")
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]
    listed = nobody(base, "ls", "--all", "--json", "--debug")
    assert [(j["id"], j["user"]) for j in json.loads(listed.stdout)] == [(job_id, "nobody")]
    system_socket = base / "system" / "tuxai.sock"
    own_socket = "/nonexistent/.local/share/tuxai/tuxai.sock"
    assert listed.stderr == f"debug: the system daemon at {system_socket} (none answers at {own_socket})\n"
    status = nobody(base, "status")
    assert status.returncode == 0, status.stderr
    assert f"asked  the system daemon at {system_socket}" in status.stdout


def test_with_no_daemon_anywhere_the_error_lists_the_places_tried(base: Path) -> None:
    done = nobody(base, "ls")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    expected = f"nothing answers at /nonexistent/.local/share/tuxai/tuxai.sock or {base / 'system' / 'tuxai.sock'}"
    assert "the tuxai daemon is not running" in done.stderr and expected in done.stderr


def test_the_users_own_daemon_comes_first(base: Path, system_daemon: DaemonProcess) -> None:
    own = base / "own" / "tuxai"
    own.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(own / "tuxai.sock"))  # something answers in the user's own home
        (own / "tuxai.sock").chmod(0o666)
        listener.listen(8)
        stop = threading.Event()

        def hang_up() -> None:  # answers by closing at once: the CLI fails fast, not after its 30 s timeout
            listener.settimeout(0.1)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    listener.accept()[0].close()

        closer = threading.Thread(target=hang_up)
        closer.start()
        try:
            done = nobody(base, "ls", "--debug", XDG_DATA_HOME=str(base / "own"))
        finally:
            stop.set()
            closer.join()
    assert done.stderr.startswith(f"debug: the daemon at {own / 'tuxai.sock'}\n")  # not the system's


def test_a_home_given_is_the_only_place_asked(base: Path, system_daemon: DaemonProcess) -> None:
    done = nobody(base, "ls", TUXAI_HOME=str(base / "elsewhere"))
    assert done.returncode == 2 and f"nothing answers at {base / 'elsewhere' / 'tuxai.sock'})" in done.stderr
    with Client.discover(env={"TUXAI_SYSTEM_HOME": str(base / "system")}) as client:  # root: its own is the system's
        client.health()
        assert client.describe() == f"the daemon at {base / 'system' / 'tuxai.sock'}"
    with Client.discover(base / "elsewhere") as client, pytest.raises(DaemonError, match="nothing answers at"):
        client.health()
