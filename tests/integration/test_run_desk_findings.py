"""Session 7's review of the run desk (E10): a request the store refused keeps no watcher alive and drops
the store's client that failed; an ``open`` asked again after its watcher died opens no second run. Real
sockets and the desk's real handler; a store of runs in memory stands in for MLflow (the MLflow tier's)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO
from tuxai.errors import TuxaiError
from tuxai.lifecycle.desk_client import DeskRuns
from tuxai.lifecycle.run_desk import REQUEST_TAG, MlflowHandler, RunDesk, address, open_folder, read_line


class Store:
    """A tracking store's runs, shared by every client made on it; ``stale`` experiments fail every call."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, str]] = {}
        self.experiments = {"tuxai": "1"}
        self.made = 0

    def client(self, uri: str, experiment: str, artifacts: str | None) -> Client:
        self.made += 1
        return Client(self, self.experiments[experiment])


class Client:
    """One ``Tracker``: the experiment id it read when it was made."""

    def __init__(self, store: Store, experiment_id: str) -> None:
        self.store, self.experiment_id = store, experiment_id

    def _check(self) -> None:
        if self.experiment_id not in self.store.experiments.values():
            raise LookupError(f"No Experiment with id={self.experiment_id} exists")

    def open(self, name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> str:
        self._check()
        run_id = f"run-{len(self.store.runs) + 1}"
        self.store.runs[run_id] = dict(tags)
        return run_id

    def tag(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._check()
        self.store.runs[run_id].update(tags)

    def delete(self, run_id: str) -> None:
        self.store.runs.pop(run_id)

    def find(self, key: str, value: str) -> str | None:
        return next((r for r, tags in self.store.runs.items() if tags.get(key) == value), None)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A user's ``open/`` folder, 0700 as tuxai makes it."""
    made = tmp_path / "data/tuxai/mlflow/open"
    made.mkdir(parents=True, mode=0o700)
    return made


def runs(folder: Path) -> DeskRuns:
    """A submit's side of ``folder``'s desk."""
    return DeskRuns(folder, "tuxai", "sqlite:////x/mlflow.db", "file:///x/artifacts", dict(os.environ))


def test_E10_a_stale_experiment_fails_one_submit_and_keeps_no_watcher_alive(folder: Path) -> None:
    # Before: the failed request refreshed `served` and the cached client kept the stale experiment id,
    # so every tracked submit failed for as long as submits kept coming.
    store = Store()
    desk = RunDesk(folder, MlflowHandler(threading.Lock(), store.client), dict(os.environ))
    try:
        assert runs(folder).open("train", {}, {}) == "run-1"
        store.experiments["tuxai"] = "2"  # the experiment deleted and made again: the cached id is stale
        before = desk.served
        with pytest.raises(TuxaiError, match="No Experiment with id=1"):
            runs(folder).open("train", {}, {})
        assert desk.served == before  # a refused request is no reason to stay
        assert runs(folder).open("train", {}, {}) == "run-2" and store.made == 2  # a new client, the new id
        assert desk.served > before
    finally:
        desk.close()


def test_E10_an_open_asked_again_after_its_watcher_died_opens_no_second_run(folder: Path) -> None:
    # Before: the retry was a plain second open: the run the dead watcher opened stayed RUNNING, orphaned.
    store = Store()
    folder_fd = open_folder(folder)
    dying = socket.socket(socket.AF_UNIX)
    dying.bind(address(folder_fd))
    dying.listen()
    handed: list[RunDesk] = []

    def open_then_die() -> None:  # the run opened, then the watcher gone before its answer
        conn, _ = dying.accept()
        try:
            MlflowHandler(threading.Lock(), store.client)(read_line(conn))
        finally:  # the next watcher's desk in place before this one's connection drops
            handed.append(RunDesk(folder, MlflowHandler(threading.Lock(), store.client), dict(os.environ)))
            dying.close()
            conn.close()

    thread = threading.Thread(target=open_then_die)
    thread.start()
    try:
        began = time.monotonic()
        run_id = runs(folder).open("train", {}, {"tuxai.git_commit": "abc"})
        assert time.monotonic() - began < 5
        assert list(store.runs) == [run_id] == ["run-1"]  # the one run, answered by the next watcher
        assert len(store.runs[run_id][REQUEST_TAG]) == 32 and store.runs[run_id]["tuxai.git_commit"] == "abc"
    finally:
        thread.join(timeout=10)
        os.close(folder_fd)
        for desk in handed:
            desk.close()


def test_E11e_the_watchers_memory_is_one_measured_number_in_the_code_and_the_docs() -> None:
    # Before: docs/lifecycle.md said about 230 MB, job_watch.py about 150 MB; measured: 223 MiB VmRSS.
    code = (REPO / "src/tuxai/lifecycle/job_watch.py").read_text()
    docs = (REPO / "docs/lifecycle.md").read_text()
    (in_code,) = re.findall(r"^IDLE_S = .*~(\d+) MiB", code, re.MULTILINE)
    assert f"about {in_code} MiB resident" in docs and in_code == "225"
