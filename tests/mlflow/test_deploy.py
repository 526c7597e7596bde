"""``tuxai serve models:/NAME@ALIAS`` against a real MLflow registry in SQLite: the alias's version
served and answered with tritonclient; moving the alias under 4 threads of load swaps the served
version within 2 s with every request answered 200; moving it back rolls back; the served version
tagged in the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from tests.daemon_helpers import DaemonProcess
from tests.mlflow.alias_server import serving_alias
from tests.mlflow.conftest import seed_store
from tests.serving_models import mlp_onnx

pytestmark = pytest.mark.mlflow


def register(client: Any, experiment: str, name: str, model: Path) -> str:
    """A run that logged ``model`` under ``model/``, registered as the next version of ``name``; its number."""
    run = client.create_run(experiment)
    client.log_artifact(run.info.run_id, str(model), artifact_path="model")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return str(version.version)


def registry(tmp_path: Path, data: Path, name: str, versions: int, template: Path) -> Any:
    """The user's SQLite store under ``data`` (a copy of the tier's template) with model ``name`` in
    ``versions`` versions (tiny MLPs of different weights), @champion on version 1; MLflow's client of it."""
    from mlflow import MlflowClient

    uri = seed_store(template, data)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(name, artifact_location=(tmp_path / "artifacts").as_uri())
    client.create_registered_model(name)
    for seed in range(1, versions + 1):
        register(client, experiment, name, mlp_onnx(tmp_path / f"v{seed}" / "model.onnx", (4, 8, 3), seed))
    client.set_registered_model_alias(name, "champion", "1")
    return client


class Load:
    """4 threads asking the model as fast as they can; every answer's status and served version kept."""

    def __init__(self, url: str) -> None:
        self.url, self.stop = url, threading.Event()
        self.answers: list[tuple[int, str]] = []
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [0.5, 1.0, 1.5, 2.0]}]}
        self.threads = [threading.Thread(target=self._ask, args=(body,)) for _ in range(4)]
        for thread in self.threads:
            thread.start()

    def _ask(self, body: dict[str, Any]) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                answer = http.post("/v2/models/digits/infer", json=body)
                version = answer.json().get("model_version", "") if answer.status_code == 200 else ""
                self.answers.append((answer.status_code, version))

    def served(self) -> str:
        """The version of the latest answer."""
        while not self.answers:
            time.sleep(0.01)
        return self.answers[-1][1]

    def wait_for(self, version: str, within_s: float) -> float:
        """Seconds until answers come from ``version`` (fails past ``within_s``)."""
        began = time.monotonic()
        while self.served() != version:
            assert time.monotonic() - began < within_s, f"still version {self.served()} after {within_s} s"
            time.sleep(0.01)
        return time.monotonic() - began

    def finish(self) -> list[tuple[int, str]]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        return self.answers


def test_serve_follows_the_alias_under_load_and_rolls_back(tmp_path: Path, store_template: Path) -> None:
    data = tmp_path / "data"
    client = registry(tmp_path, data, "digits", versions=2, template=store_template)

    with serving_alias(tmp_path, data) as url:
        triton_client = triton.InferenceServerClient(url.removeprefix("http://"))
        x = triton.InferInput("x", [2, 4], "FP32")
        x.set_data_from_numpy(np.ones((2, 4), dtype=np.float32))
        answer = triton_client.infer("digits", [x])
        assert answer.get_response()["model_version"] == "1" and answer.as_numpy("y").shape == (2, 3)

        deadline = time.monotonic() + 10
        while client.get_model_version("digits", "1").tags.get("tuxai.serving", "").split(" ")[0] != url:
            assert time.monotonic() < deadline, client.get_model_version("digits", "1").tags
            time.sleep(0.1)

        load = Load(url)
        assert load.wait_for("1", 10) >= 0
        client.set_registered_model_alias("digits", "champion", "2")
        swapped_s = load.wait_for("2", 2.0)
        client.set_registered_model_alias("digits", "champion", "1")
        rolled_back_s = load.wait_for("1", 2.0)
        answers = load.finish()
        print(f"\nswap {swapped_s:.2f} s, rollback {rolled_back_s:.2f} s, {len(answers)} requests")
        assert {status for status, _ in answers} == {200}, [a for a in answers if a[0] != 200][:5]
        assert {version for _, version in answers} == {"1", "2"}
        deadline = time.monotonic() + 10  # the follower tags after the policy moved: served first, then tagged
        while True:
            tags = {v: client.get_model_version("digits", v).tags for v in ("1", "2")}
            if tags["1"].get("tuxai.serving", "").startswith(url) and "tuxai.serving" not in tags["2"]:
                break
            assert time.monotonic() < deadline, tags
            time.sleep(0.1)
    assert "tuxai.serving" not in client.get_model_version("digits", "1").tags  # the tag left with the server


def test_submit_serve_runs_the_alias_follower_as_the_users_job(
    shared_daemon: DaemonProcess, tmp_path: Path, store_template: Path
) -> None:
    data = tmp_path / "data"
    client = registry(tmp_path, data, "served", versions=1, template=store_template)
    # The server job untracked: a tracked submit is test_job_runs.py's, here it would only add MLflow's import.
    env = {**os.environ, "TUXAI_HOME": str(shared_daemon.home), "XDG_DATA_HOME": str(data), "TUXAI_MLFLOW": "off"}
    env.pop("MLFLOW_TRACKING_URI", None)
    tuxai = [sys.executable, "-m", "tuxai"]
    refused = subprocess.run([*tuxai, "submit", "--serve", "models:/served/1"], capture_output=True, text=True,
                             env=env, timeout=60, check=False)  # fmt: skip
    assert refused.returncode == 2 and "is not a registry alias" in refused.stderr

    done = subprocess.run([*tuxai, "submit", "--json", "--serve", "models:/served@champion"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]
    try:
        deadline = time.monotonic() + 90
        while not shared_daemon.job(job_id).endpoint:
            assert time.monotonic() < deadline and not shared_daemon.job(job_id).state.terminal, shared_daemon.log(
                job_id
            )
            time.sleep(0.2)
        args = ["infer", "served", "--job", str(job_id), "-i", "x=[[0.5, 1, 1.5, 2]]", "--json"]
        answer = subprocess.run([*tuxai, *args], capture_output=True, text=True, env=env, timeout=60, check=False)
        assert answer.returncode == 0, answer.stderr + shared_daemon.log(job_id)
        assert json.loads(answer.stdout)["model_version"] == "1"
        tag = client.get_model_version("served", "1").tags["tuxai.serving"]
        assert tag.startswith(shared_daemon.job(job_id).endpoint or "?"), tag
    finally:
        shared_daemon.client.cancel(job_id)
        shared_daemon.wait_all([job_id])


def test_E17_4_the_follower_prunes_versions_it_no_longer_serves(tmp_path: Path, store_template: Path) -> None:
    from tuxai.lifecycle.deploy import AliasFollower, ModelAlias

    data = tmp_path / "data"
    client = registry(tmp_path, data, "digits", versions=3, template=store_template)
    follower = AliasFollower(
        ModelAlias("digits", "champion"), tmp_path / "serving", str, {"XDG_DATA_HOME": str(data)}, keep=2
    )
    on_disk = []
    for version in ("1", "2", "3"):
        client.set_registered_model_alias("digits", "champion", version)
        assert follower.sync() == int(version)
        on_disk.append(sorted(p.name for p in follower.directory.iterdir() if p.name.isdigit()))
    assert on_disk == [["1"], ["1", "2"], ["2", "3"]]  # 1 pruned once 3 served: the one just left stays
