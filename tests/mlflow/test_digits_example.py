"""examples/lifecycle end to end on the simulated 2-GPU box: scikit-learn's digits prepared, a PyTorch
model trained (its loss logged on the step's MLflow run), evaluated, registered as ONNX and made
@champion; a second run re-uses every step; a change of the training code re-runs train and what
follows, not prepare; the champion served by alias and answered with tritonclient; its inputs'
drift read with `tuxai drift`: none on held-out rows, a corrupted pixel named."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import REPO
from tests.daemon_helpers import DaemonProcess
from tests.mlflow.alias_server import serving_alias
from tests.mlflow.conftest import seed_store

pytestmark = pytest.mark.mlflow
EXAMPLE = REPO / "examples" / "lifecycle"


def tuxai(daemon: DaemonProcess, data: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``tuxai ARGS`` as a user in this virtual environment (its python first on PATH, as an activated venv
    puts it); the result and the process's own CPU seconds."""
    env = {**os.environ, "TUXAI_HOME": str(daemon.home), "XDG_DATA_HOME": str(data), "COLUMNS": "200"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "tuxai", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def states(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each step's state as `tuxai pipeline run` drew it."""
    found = {}
    for line in done.stdout.splitlines():
        words = line.replace("└ ", "").split()
        if words and words[0] in ("prepare", "train", "evaluate", "register"):
            found[words[0]] = words[1]
    return found


@pytest.mark.timeout(600)  # three pipeline runs of four jobs each (torch, MLflow, ONNX Runtime imported in each)
def test_the_digits_pipeline_caches_registers_serves_by_alias_and_watches_drift(
    shared_daemon: DaemonProcess, tmp_path: Path, store_template: Path
) -> None:
    from mlflow import MlflowClient

    project, data = tmp_path / "project", tmp_path / "data"
    uri = seed_store(store_template, data)
    shutil.copytree(EXAMPLE, project)
    pipeline = str(project / "pipeline.yaml")
    began = time.monotonic()
    done, _ = tuxai(shared_daemon, data, "pipeline", "run", pipeline)
    print(f"\nfirst run: {time.monotonic() - began:.1f} s")
    assert done.returncode == 0, done.stderr
    assert set(states(done).values()) == {"succeeded"}, done.stdout

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("digits")
    assert experiment.artifact_location == (data / "tuxai/mlflow/artifacts").as_uri()
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"digits.prepare", "digits.train", "digits.evaluate", "digits.register"}
    train = runs["digits.train"]
    job = shared_daemon.job(int(train.data.tags["tuxai.job_id"]))
    assert train.info.status == "FINISHED" and train.data.tags["tuxai.state"] == "succeeded"
    assert train.data.tags["tuxai.user"] == job.user and train.data.tags["tuxai.step"] == "train"
    assert train.data.tags["tuxai.gpus"] == job.gpus[0] and train.data.tags["tuxai.gpu_models"]
    assert train.data.tags["tuxai.code_hash"] and train.data.tags["tuxai.energy_method"]
    assert train.data.params["command"] == "python train.py" and train.data.params["gpus"] == "1"
    assert train.data.metrics["tuxai.gpu_hours"] > 0 and train.data.metrics["tuxai.energy_kwh"] > 0
    assert "tuxai.co2e_kg" in train.data.metrics and train.data.metrics["tuxai.ran_s"] > 0
    assert train.data.metrics["tuxai.peak_gpu_memory_bytes"] >= 0  # telemetry's peak of its GPU (issue 17 gap 2)
    assert "loss" in train.data.metrics  # logged by the step's own code, on the same run
    assert runs["digits.evaluate"].data.metrics["accuracy"] > 0.9
    assert "tuxai.gpus" not in runs["digits.prepare"].data.tags  # no GPU: no GPU tag
    champion = client.get_model_version_by_alias("digits", "champion")
    accuracy = float(champion.tags["accuracy"])
    assert str(champion.version) == "1" and accuracy > 0.9

    again, cpu_s = tuxai(shared_daemon, data, "pipeline", "run", pipeline)
    assert again.returncode == 0 and set(states(again).values()) == {"cached"}, again.stdout
    print(f"\nfully cached run: {cpu_s:.2f} s of CPU for the whole tuxai process")
    assert cpu_s < 1.0
    assert len(client.search_runs([experiment.experiment_id])) == 4  # every step cached: no new run

    (project / "train.py").write_text((project / "train.py").read_text() + "# a change of the training code\n")
    began = time.monotonic()
    third, _ = tuxai(shared_daemon, data, "pipeline", "run", pipeline)
    print(f"run after the code change: {time.monotonic() - began:.1f} s")
    assert third.returncode == 0, third.stderr
    assert states(third) == {"prepare": "cached", "train": "succeeded", "evaluate": "succeeded",
                             "register": "succeeded"}, third.stdout  # fmt: skip
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "1"  # v2 not better: stays

    held_out = np.load(next((data / "tuxai/pipelines/runs/1/prepare/data").glob("*.npz")))
    x_test, y_test = held_out["x_test"], held_out["y_test"]
    with serving_alias(tmp_path, data) as url:
        asked = triton.InferenceServerClient(url.removeprefix("http://"))
        correct = 0
        for start in range(0, len(x_test), 50):
            x = triton.InferInput("x", list(x_test[start : start + 50].shape), "FP32")
            x.set_data_from_numpy(x_test[start : start + 50])
            answer = asked.infer("digits", [x])
            correct += int((answer.as_numpy("y").argmax(axis=1) == y_test[start : start + 50]).sum())
        assert correct / len(x_test) == pytest.approx(accuracy)  # what evaluate measured, served

        def send(rows: np.ndarray) -> None:
            for start in range(0, len(rows), 50):
                x = triton.InferInput("x", list(rows[start : start + 50].shape), "FP32")
                x.set_data_from_numpy(rows[start : start + 50])
                asked.infer("digits", [x])

        send(np.concatenate([x_test, x_test])[: 1000 - len(x_test)])  # with the first pass: one window of 1,000
        quiet, _ = tuxai(shared_daemon, data, "drift", "digits", "--url", url)
        assert quiet.stdout.splitlines()[0] == "model digits version 1: no drift (last of 1 windows)", quiet.stdout
        corrupted = np.concatenate([x_test, x_test])[:1000].copy()
        corrupted[:, 36] = 1.0  # a pixel stuck at full ink
        send(corrupted)
        loud, _ = tuxai(shared_daemon, data, "drift", "digits", "--url", url)
        assert loud.stdout.splitlines()[0] == "model digits version 1: drift on x[36] (last of 2 windows)", loud.stdout
    assert json.loads((data / "tuxai/pipelines/runs/1/register/version").joinpath("version.json").read_text())
