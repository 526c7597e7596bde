"""The watcher's run desk (issue 17's follow-up, E17_5): a tracked `tuxai submit` asks the user's watcher for
its MLflow run over a Unix socket instead of importing MLflow. The protocol, the peer check, the folder
check and every way the desk can be missing, on real sockets and real watcher processes; MLflow itself
is the MLflow tier's (a recording handler stands in for it here)."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tuxai.errors import TuxaiError
from tuxai.lifecycle.desk_client import DeskRuns, ask
from tuxai.lifecycle.job_watch import LOCK, Watcher, lock_watcher
from tuxai.lifecycle.run_desk import PROTOCOL, SOCKET, RunDesk, Unserved, address, mlflow_env, open_folder

NOBODY = 65534


class Recorder:
    """Stands in for MLflow's client behind the desk: each request noted, a run id per ``open``."""

    def __init__(self, fail: str = "") -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, request: Mapping[str, Any]) -> dict[str, Any]:
        self.requests.append(dict(request))
        if self.fail:
            return {"error": "store", "message": self.fail}
        return {"run": f"run-{len(self.requests)}"} if request["op"] == "open" else {"done": True}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A user's ``open/`` folder, 0700 as tuxai makes it."""
    made = tmp_path / "data/tuxai/mlflow/open"
    made.mkdir(parents=True, mode=0o700)
    return made


@pytest.fixture
def desk(folder: Path) -> Iterator[tuple[RunDesk, Recorder]]:
    """A desk serving ``folder`` with a recorder, started with this process's MLFLOW_* variables."""
    recorder = Recorder()
    served = RunDesk(folder, recorder, dict(os.environ))
    try:
        yield served, recorder
    finally:
        served.close()


def runs(folder: Path, env: Mapping[str, str] | None = None) -> DeskRuns:
    """A submit's side of ``folder``'s desk."""
    return DeskRuns(folder, "tuxai", "sqlite:////x/mlflow.db", "file:///x/artifacts", env)


def test_E17_5_a_run_is_opened_tagged_and_deleted_by_the_watchers_desk_in_milliseconds(
    desk: tuple[RunDesk, Recorder], folder: Path
) -> None:
    _, recorder = desk
    client, took = runs(folder), []
    for _ in range(20):
        began = time.perf_counter()
        run_id = client.open("train", {"gpus": "1"}, {"tuxai.git_commit": "abc"})
        took.append(time.perf_counter() - began)
    client.tag(run_id, {"tuxai.job_id": "7"})
    client.delete(run_id)
    print(f"\nrun opened through the desk: median {statistics.median(took) * 1000:.1f} ms")
    assert run_id == "run-20" and statistics.median(took) < 0.1
    first = recorder.requests[0]
    assert first["op"] == "open" and first["name"] == "train" and first["params"] == {"gpus": "1"}
    assert (first["uri"], first["artifacts"], first["experiment"]) == (
        "sqlite:////x/mlflow.db",
        "file:///x/artifacts",
        "tuxai",
    )
    assert [r["op"] for r in recorder.requests[-2:]] == ["tag", "delete"] and recorder.requests[-2]["tags"] == {
        "tuxai.job_id": "7"
    }
    assert oct((folder / SOCKET).stat().st_mode & 0o777) == "0o600"


def test_E17_5_another_protocol_or_other_mlflow_variables_are_unserved_and_keep_no_watcher_alive(
    desk: tuple[RunDesk, Recorder], folder: Path
) -> None:
    served, recorder = desk
    before = served.served
    with pytest.raises(Unserved):
        runs(folder, {**os.environ, "MLFLOW_TRACKING_TOKEN": "another"}).open("train", {}, {})
    assert ask(folder, {"version": PROTOCOL + 1, "op": "open"})["error"] == "unserved"
    assert recorder.requests == [] and served.served == before  # the watcher's idle clock runs on


def test_E17_5_a_store_failure_behind_the_desk_is_one_error(folder: Path) -> None:
    failing = RunDesk(folder, Recorder(fail="database is locked"), dict(os.environ))
    try:
        with pytest.raises(TuxaiError, match="database is locked"):
            runs(folder).open("train", {}, {})
    finally:
        failing.close()
    assert not (folder / SOCKET).exists()


def test_E17_5_a_folder_open_to_others_or_a_link_is_refused(tmp_path: Path, folder: Path) -> None:
    folder.chmod(0o755)
    with pytest.raises(TuxaiError, match="not yours alone"):
        open_folder(folder)
    with pytest.raises(TuxaiError, match="not yours alone"):
        runs(folder).open("train", {}, {})  # the submit says it in one line and goes untracked
    folder.chmod(0o700)
    link = tmp_path / "elsewhere"
    link.symlink_to(folder)
    with pytest.raises(TuxaiError, match="cannot open"):
        open_folder(link)


def test_E17_5_the_desk_answers_its_own_user_only() -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: to connect as another user (nobody)")  # with the system's python: the venv is root's
    base = Path(tempfile.mkdtemp(prefix="tuxai-desk-"))  # pytest's tmp_path is private to root
    folder, recorder = base / "open", Recorder()
    folder.mkdir(mode=0o700)
    served = RunDesk(folder, recorder, dict(os.environ))
    try:
        for opened in (base, folder):  # opened to nobody on purpose: the peer check is what is tested
            opened.chmod(0o755)
        (folder / SOCKET).chmod(0o666)
        probe = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(4096))"
        done = subprocess.run(
            ["/usr/bin/python3", "-c", probe, str(folder / SOCKET)], capture_output=True, text=True,
            user=NOBODY, group=NOBODY, extra_groups=[], cwd="/", timeout=30, check=False,
        )  # fmt: skip
        assert '"refused"' in done.stdout, done.stderr
        assert recorder.requests == []
    finally:
        served.close()
        shutil.rmtree(base, ignore_errors=True)


def _watcher_pid(folder: Path) -> int:
    deadline = time.monotonic() + 30
    while not (folder / LOCK).read_text().strip():  # the watcher writes its pid once forked
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return int((folder / LOCK).read_text())


def test_E17_5_a_killed_watchers_stale_socket_leads_to_a_new_watcher(folder: Path) -> None:
    old = subprocess.Popen([sys.executable, "-m", "tuxai.lifecycle.job_watch", str(folder)], start_new_session=True)
    pids = []
    try:
        deadline = time.monotonic() + 30
        while not (folder / SOCKET).exists():  # its desk is up
            assert time.monotonic() < deadline and old.poll() is None
            time.sleep(0.02)
        unserved = {"version": 0}  # answered before any MLflow is loaded
        assert ask(folder, unserved)["error"] == "unserved"
        assert _watcher_pid(folder) == old.pid
        old.send_signal(signal.SIGKILL)
        old.wait(timeout=10)
        assert (folder / SOCKET).exists()  # stale: nobody listens
        with socket.socket(socket.AF_UNIX) as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(str(folder / SOCKET))
        assert ask(folder, unserved)["error"] == "unserved"  # a new watcher started, its desk answered
        pids.append(_watcher_pid(folder))
        assert pids[0] != old.pid and Path(f"/proc/{pids[0]}").exists()
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def test_E17_5_a_watcher_alive_without_a_desk_leaves_the_submit_to_open_its_run(folder: Path) -> None:
    lock_fd = lock_watcher(folder)  # a watcher of a tuxai with no desk holds the folder
    assert lock_fd is not None
    try:
        began = time.monotonic()
        with pytest.raises(Unserved):
            ask(folder, {"version": PROTOCOL}, held_s=0.3)
        assert time.monotonic() - began < 3
    finally:
        os.close(lock_fd)


def test_E17_5_the_watcher_stays_while_runs_are_asked_for_and_leaves_when_idle(folder: Path) -> None:
    lock_fd = lock_watcher(folder)
    assert lock_fd is not None
    env = dict(os.environ)
    watcher = Watcher(folder, lock_fd=lock_fd, open_desk=functools.partial(RunDesk, folder, Recorder(), env))
    returned: list[int] = []
    following = threading.Thread(target=lambda: returned.append(watcher.run(idle_s=0.6)))
    try:
        following.start()
        client = runs(folder, env)
        for _ in range(6):  # 1.2 s of requests, twice the idle timeout
            client.open("train", {}, {})
            time.sleep(0.2)
        assert following.is_alive()
        following.join(timeout=10)
        assert returned == [0] and not (folder / SOCKET).exists()
    finally:
        os.close(lock_fd)
    assert mlflow_env({"MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_RUN_ID": "x"}) == {"MLFLOW_TRACKING_USERNAME": "ada"}


def test_E17_5_a_request_a_leaving_desk_never_read_is_asked_again(folder: Path) -> None:
    folder_fd = open_folder(folder)
    leaving = socket.socket(socket.AF_UNIX)
    leaving.bind(address(folder_fd))
    leaving.listen()

    def drop_one() -> None:  # a watcher leaving: its socket gone before the connection it held is dropped
        conn, _ = leaving.accept()
        os.unlink(folder / SOCKET)
        leaving.close()
        conn.close()

    dropping = threading.Thread(target=drop_one)
    dropping.start()
    try:
        assert ask(folder, {"version": 0})["error"] == "unserved"  # asked again: a new watcher answered
    finally:
        dropping.join(timeout=10)
        os.close(folder_fd)
        with contextlib.suppress(OSError, ValueError):
            os.kill(_watcher_pid(folder), signal.SIGTERM)
