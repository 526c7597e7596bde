"""The run desk's handler on MLflow's own client and a real SQLite store (E10): an ``open`` asked again after
its watcher died — a new handler, as a new watcher has — answers the run the first one opened."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlflow import MlflowClient
from tests.mlflow.conftest import seed_store
from tuxai.lifecycle.run_desk import REQUEST_TAG, MlflowHandler

pytestmark = pytest.mark.mlflow


def test_E10_an_open_asked_again_finds_the_run_the_dead_watcher_opened(store_template: Path, tmp_path: Path) -> None:
    uri = seed_store(store_template, tmp_path)
    request = {"op": "open", "uri": uri, "experiment": "tuxai", "artifacts": f"file://{tmp_path}/artifacts",
               "name": "train", "params": {"gpus": "1"}, "tags": {REQUEST_TAG: "0123abcd" * 4}}  # fmt: skip
    first = MlflowHandler(threading.Lock())(request)["run"]
    again = MlflowHandler(threading.Lock())({**request, "retry": True})  # the next watcher's
    other = MlflowHandler(threading.Lock())({**request, "tags": {REQUEST_TAG: "f" * 32}, "retry": True})
    assert again == {"run": first} and other["run"] != first
    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name("tuxai")
    assert experiment is not None
    runs = MlflowClient(tracking_uri=uri).search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted([first, other["run"]])
