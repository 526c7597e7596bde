"""Each pipeline step an MLflow run, read back with the stock ``mlflow`` client from the user's SQLite
store: the spec as parameters, tuxai's tags, GPU-hours and energy, and a metric the step's own code
logged through ``MLFLOW_RUN_ID`` on the same run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess

pytestmark = pytest.mark.mlflow

PIPELINE = """\
name: tracked
steps:
  prepare:
    command: {python} -c "import os; open(os.environ['PIPELINE_OUTPUT_DATA'] + '/n', 'w').write('3')"
    outputs: [data]
  train:
    command: {python} train.py
    gpus: 1
    export: {{MLFLOW_DISABLE_TELEMETRY: "true"}}
    inputs: {{data: prepare.data}}
    outputs: [model]
"""
TRAIN = """\
import os, mlflow
n = int(open(os.environ['PIPELINE_INPUT_DATA'] + '/n').read())
mlflow.log_metric('accuracy', 0.25 * n)
open(os.environ['PIPELINE_OUTPUT_MODEL'] + '/model.txt', 'w').write(str(n))
"""


def tuxai(daemon: DaemonProcess, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``tuxai ARGS`` as a user whose XDG data directory is ``data``."""
    env = {**os.environ, "TUXAI_HOME": str(daemon.home), "XDG_DATA_HOME": str(data)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "tuxai", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_a_step_is_an_mlflow_run_with_tuxais_tags_energy_and_its_own_metric(
    shared_daemon: DaemonProcess, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    project, data = tmp_path / "project", tmp_path / "data"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)
    (project / "pipeline.yaml").write_text(PIPELINE.format(python=sys.executable))
    done = tuxai(shared_daemon, data, "pipeline", "run", str(project / "pipeline.yaml"))
    assert done.returncode == 0, done.stderr

    store = data / "tuxai/mlflow/mlflow.db"
    assert store.is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("tracked")
    assert experiment is not None and experiment.artifact_location == (data / "tuxai/mlflow/artifacts").as_uri()
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"tracked.prepare", "tracked.train"}
    train = runs["tracked.train"]
    job = shared_daemon.job(int(train.data.tags["tuxai.job_id"]))
    assert train.info.status == "FINISHED" and train.data.tags["tuxai.state"] == "succeeded"
    assert train.data.tags["tuxai.user"] == job.user and train.data.tags["tuxai.step"] == "train"
    assert train.data.tags["tuxai.gpus"] == job.gpus[0] and train.data.tags["tuxai.gpu_models"]
    assert train.data.tags["tuxai.code_hash"] and train.data.tags["tuxai.energy_method"]
    assert train.data.params["command"] == f"{sys.executable} train.py" and train.data.params["gpus"] == "1"
    assert train.data.metrics["accuracy"] == 0.75  # logged by the step's own code, on the same run
    assert train.data.metrics["tuxai.gpu_hours"] > 0 and train.data.metrics["tuxai.energy_kwh"] > 0
    assert "tuxai.co2e_kg" in train.data.metrics and train.data.metrics["tuxai.ran_s"] > 0
    assert "tuxai.gpus" not in runs["tracked.prepare"].data.tags  # no GPU: no GPU tag

    again = tuxai(shared_daemon, data, "pipeline", "run", str(project / "pipeline.yaml"))
    assert again.returncode == 0, again.stderr
    assert len(client.search_runs([experiment.experiment_id])) == 2  # every step cached: no new run


def test_mlflow_ui_with_the_light_client_says_in_one_line_what_to_install(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tuxai", "mlflow", "ui"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: MLflow's UI is not in mlflow-skinny, the light client tuxai[mlflow] installs: pip install mlflow"
    )
