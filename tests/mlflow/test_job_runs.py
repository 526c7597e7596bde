"""A plain `tuxai submit` job as an MLflow run (issue 17): opened by the CLI, the job given its
MLFLOW_TRACKING_URI and MLFLOW_RUN_ID, ended by the user's watcher with the job's tags and metrics —
read back with MLflow's stock client. TUXAI_MLFLOW=off, or no MLflow installed: no run, no word."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_helpers import DaemonProcess
from tests.e2e.test_lifecycle_no_mlflow import WITHOUT_MLFLOW

pytestmark = pytest.mark.mlflow


def submit(
    daemon: DaemonProcess, data: Path, *args: str, launcher: tuple[str, ...] = ("-m", "tuxai"), **env: str
) -> tuple[int, str]:
    """``tuxai submit ARGS`` as a user whose data (and MLflow store) is under ``data``; the job's id, its stderr."""
    given = {**os.environ, "TUXAI_HOME": str(daemon.home), "XDG_DATA_HOME": str(data), **env}
    given.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, *launcher, "submit", "--json", *args], capture_output=True, text=True, env=given,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split('"id":')[1].strip(" }\n")), done.stderr


def ended_run(client: Any, experiment: str, job_id: int) -> Any:
    """The job's run once its watcher ended it (polled)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id], f"tags.`tuxai.job_id` = '{job_id}'") if found else []
        if runs and runs[0].info.status != "RUNNING":
            return runs[0]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id}'s run did not end")


def test_E17_1_a_submitted_job_is_an_mlflow_run_with_tuxai_tags_and_metrics(
    shared_daemon: DaemonProcess, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    data, out = tmp_path / "data", tmp_path / "seen"
    began = time.monotonic()
    job_id, said = submit(
        shared_daemon, data, "--gpus", "1", "--name", "probe", "-w", str(tmp_path), "--",
        "sh", "-c", f'echo "$MLFLOW_TRACKING_URI $MLFLOW_RUN_ID" > {out}',
    )  # fmt: skip
    print(f"\ntracked submit: {time.monotonic() - began:.2f} s")
    assert said.startswith("note: simulated inventory") and said.count("\n") == 1, said  # the daemon's note alone
    uri = f"sqlite:///{data}/tuxai/mlflow/mlflow.db"
    run = ended_run(MlflowClient(tracking_uri=uri), "tuxai", job_id)
    job = shared_daemon.job(job_id)
    assert out.read_text().split() == [uri, run.info.run_id]  # the job's own mlflow calls land on this run
    assert run.info.run_name == "probe" and run.info.status == "FINISHED"
    assert run.data.params["gpus"] == "1" and run.data.params["command"].startswith("sh -c 'echo")
    tags = run.data.tags
    assert tags["tuxai.job_id"] == str(job_id) and tags["tuxai.user"] == job.user and tags["tuxai.state"] == "succeeded"
    assert tags["tuxai.gpus"] == job.gpus[0] and tags["tuxai.gpu_models"] and tags["tuxai.energy_method"]
    assert {"tuxai.gpu_hours", "tuxai.energy_kwh", "tuxai.co2e_kg", "tuxai.ran_s"} <= set(run.data.metrics)
    assert not list((data / "tuxai/mlflow/open").iterdir())  # the watcher's ledger removed once it ended the run


def test_E17_1_tracking_off_or_without_mlflow_a_job_is_submitted_with_no_run_and_no_word(
    shared_daemon: DaemonProcess, tmp_path: Path
) -> None:
    off, said_off = submit(shared_daemon, tmp_path / "off", "--", "true", TUXAI_MLFLOW="off")
    absent, said_absent = submit(shared_daemon, tmp_path / "absent", "--", "true", launcher=("-c", WITHOUT_MLFLOW))
    assert said_off == said_absent and said_off.startswith("note: simulated") and said_off.count("\n") == 1
    for job_id in (off, absent):
        assert shared_daemon.client.wait(job_id, timeout_s=60).state == "succeeded"
    assert not (tmp_path / "off/tuxai/mlflow").exists() and not (tmp_path / "absent/tuxai/mlflow").exists()
