"""Which plain `tuxai submit` jobs become MLflow runs (lifecycle.job_tracking), decided without MLflow; and the
one watcher per user's open/ folder that ends them (lifecycle.job_watch), with a recording stand-in for MLflow."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon_helpers import DaemonProcess, shell
from tuxai.api.client import Client
from tuxai.lifecycle.job_tracking import experiment_name, job_tracked, open_dir, watch, write_ledger
from tuxai.lifecycle.job_watch import Watcher, lock_watcher
from tuxai.model.array import ArraySpec
from tuxai.model.job import JobSpec
from tuxai.model.wire import JobDetail, PublicJob

BATCH = JobSpec(command=("python", "train.py"))
INSTALLED = importlib.util.find_spec("mlflow") is not None


def test_E17_1_a_batch_job_is_tracked_unless_turned_off_or_mlflow_is_absent() -> None:
    assert job_tracked(BATCH, {}) is INSTALLED
    for off in ("off", "0", "no", "false", "OFF"):
        assert not job_tracked(BATCH, {"TUXAI_MLFLOW": off})


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(command=("python", "train.py"), array=ArraySpec((0, 1, 2))),
        JobSpec(command=("bash",), session="pty"),
        JobSpec(command=("python", "train.py"), exports=(("MLFLOW_RUN_ID", "abc"),)),
    ],
    ids=["array", "session", "own-run"],
)
def test_E17_1_arrays_sessions_and_jobs_with_their_own_run_are_not_tracked(spec: JobSpec) -> None:
    assert not job_tracked(spec, {})


def test_E17_1_plain_jobs_go_to_the_tuxai_experiment_unless_mlflow_names_one() -> None:
    assert experiment_name({}) == "tuxai"
    assert experiment_name({"MLFLOW_EXPERIMENT_NAME": "vision"}) == "vision"


def _watchers(under: Path) -> list[int]:
    """The pids of the job watchers whose command line names a path under ``under``."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"tuxai.lifecycle.job_watch" in argv and any(str(under).encode() in word for word in argv):
                found.append(int(proc.name))
    return found


def _ledger(home: Path, job: int, run: str) -> dict[str, object]:
    return {"home": str(home), "job": job, "run": run, "experiment": "tuxai"}


class CountingClient(Client):
    """The real client, noting each path it asks the daemon for."""

    def __init__(self, home: Path) -> None:
        super().__init__(home / "tuxai.sock")
        self.asked: list[str] = []

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.asked.append(path)
        return super()._call(method, path, **kwargs)


def test_E17_4_one_watcher_follows_every_ledger_with_one_list_call_per_poll(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "open"
    first = daemon.client.submit(shell("sleep 1"))
    second = daemon.client.submit(shell("exit 3"))
    write_ledger(folder, _ledger(daemon.home, first, "run-1"))
    ended: list[tuple[str, int, str, bool]] = []

    def close(entry: Mapping[str, object], job: PublicJob, client: Client) -> None:
        ended.append((str(entry["run"]), job.id, str(job.state), isinstance(job, JobDetail)))

    watcher, returned = Watcher(folder, close=close), []
    client = watcher.clients[str(daemon.home)] = CountingClient(daemon.home)
    following = threading.Thread(target=lambda: returned.append(watcher.run(idle_s=0.5)))
    following.start()
    time.sleep(0.3)
    write_ledger(folder, _ledger(daemon.home, second, "run-2"))  # written after the watcher started
    following.join(timeout=30)
    assert returned == [0]
    assert sorted(ended) == [("run-1", first, "succeeded", True), ("run-2", second, "failed", True)]
    assert not list(folder.glob("*.json"))  # each ledger gone with its run
    details = sorted(path for path in client.asked if path != "/v1/jobs")
    assert details == sorted([f"/v1/jobs/{first}", f"/v1/jobs/{second}"]), client.asked  # one each, once it ended
    assert client.asked.count("/v1/jobs") >= 2


def test_E17_4_a_second_watch_while_the_watcher_lives_starts_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    silent = tmp_path / "no-daemon"  # asked in vain: the watcher keeps asking (GIVE_UP_S) and lives on
    started = []
    try:
        started = [watch(_ledger(silent, 1, "run-1")), watch(_ledger(silent, 2, "run-2"))]
        pids = _watchers(tmp_path)
        assert len(pids) == 1, pids
        assert started == [True, False]
        lock = open_dir() / "watcher.lock"
        deadline = time.monotonic() + 10
        while lock.read_text().strip() != str(pids[0]):  # the watcher writes its pid once forked
            assert time.monotonic() < deadline, lock.read_text()
            time.sleep(0.05)
    finally:
        for pid in _watchers(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def test_E17_4_the_watcher_exits_when_its_folder_has_no_ledger_left(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    lock_fd = lock_watcher(folder)
    assert lock_fd is not None
    began = time.monotonic()
    try:
        assert Watcher(folder, lock_fd=lock_fd).run(idle_s=0.3) == 0
        assert time.monotonic() - began < 5
        again = lock_watcher(folder)  # let go: the next submit starts a watcher
        assert again is not None
        os.close(again)
    finally:
        os.close(lock_fd)


class StoreFailure(Exception):
    """Like MLflow's own ``MlflowException``: no ``TuxaiError``, ``OSError`` or ``LookupError``."""


def test_E17_4_a_run_that_cannot_be_ended_keeps_its_ledger_and_stops_no_other(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "open"
    jobs = [daemon.client.submit(shell("true")) for _ in range(2)]
    for job, run in zip(jobs, ("broken", "fine"), strict=True):
        write_ledger(folder, _ledger(daemon.home, job, run))
    ended = []

    def close(entry: Mapping[str, object], job: PublicJob, client: Client) -> None:
        if entry["run"] == "broken":
            raise StoreFailure("the store lost it")
        ended.append(job.id)

    assert Watcher(folder, close=close).run(idle_s=0.3) == 1
    assert ended == [jobs[1]]
    assert [path.name for path in folder.glob("*.json")] == ["broken.json"]  # for the next watcher
