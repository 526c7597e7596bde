"""What a job's MLflow run holds (lifecycle.tracking), pure: no MLflow needed (tests/mlflow writes them)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from tests.unit.test_wire import DETAIL, PUBLIC_JOB
from tuxai.lifecycle.tracking import (
    PARAM_VALUE_MAX,
    artifact_location,
    end_metrics,
    git_commit,
    job_tags,
    run_params,
    run_status,
    start_tags,
    tracking_uri,
    tracking_wanted,
)
from tuxai.model.job import JobState


def test_the_store_is_the_users_own_unless_they_name_a_tracking_server() -> None:
    home = {"HOME": "/home/ada"}
    assert tracking_uri(home) == "sqlite:////home/ada/.local/share/tuxai/mlflow/mlflow.db"
    assert tracking_uri({**home, "XDG_DATA_HOME": "/data"}) == "sqlite:////data/tuxai/mlflow/mlflow.db"
    assert artifact_location(home) == "file:///home/ada/.local/share/tuxai/mlflow/artifacts"
    team = {**home, "MLFLOW_TRACKING_URI": "http://mlflow.team:5000"}
    assert tracking_uri(team) == "http://mlflow.team:5000" and artifact_location(team) is None


def test_params_are_the_spec_with_the_command_as_a_shell_reads_it_and_no_exported_values() -> None:
    spec = {"command": ["python", "train.py", "--name", "a b"], "gpus": 1, "export": {"TOKEN": "s3cret", "A": "1"}}
    params = run_params({**spec, "after": ["3:ok", "4:ok"], "hold": False})
    assert params == {
        "command": "python train.py --name 'a b'",
        "gpus": "1",
        "export": "A TOKEN",
        "after": "3:ok 4:ok",
        "hold": "False",
    }
    assert "s3cret" not in str(params)
    long = run_params({"command": ["x" * 10_000]})["command"]
    assert len(long) == PARAM_VALUE_MAX and long.endswith("…(cut)")


def test_tags_name_the_job_its_user_gpus_models_and_the_energy_method() -> None:
    ended = dataclasses.replace(DETAIL, state=JobState.FAILED, reason="exit 3", ended_at=20.0)
    tags = job_tags(ended, {"GPU-1": "NVIDIA A100-SXM4-80GB"})
    assert tags["tuxai.job_id"] == "7" and tags["tuxai.user"] == "alice" and tags["tuxai.node"] == "local"
    assert tags["tuxai.gpus"] == "GPU-1" and tags["tuxai.gpu_models"] == "NVIDIA A100-SXM4-80GB"
    assert tags["tuxai.reason"] == "exit 3" and tags["tuxai.state"] == "failed"
    assert tags["tuxai.energy_method"] == "cpu=rapl, gpu0=simulated"
    assert tags["tuxai.co2e_basis"] == "475 gCO2e/kWh, PUE 1.2"
    assert "tuxai.reason" not in job_tags(DETAIL)  # a running job's reason is no failure
    both = start_tags(pipeline="digits", step="train", code_hash="c1", env_hash="", git="abc+dirty")
    assert both == {
        "tuxai.pipeline": "digits",
        "tuxai.step": "train",
        "tuxai.code_hash": "c1",
        "tuxai.git_commit": "abc+dirty",
        "mlflow.runName": "digits.train",
    }


def test_metrics_are_telemetrys_energy_when_it_has_the_job_else_gpus_times_time() -> None:
    metrics = end_metrics(DETAIL)
    assert metrics["tuxai.gpu_hours"] == 0.001 and metrics["tuxai.energy_kwh"] == 1e-6
    assert metrics["tuxai.co2e_kg"] == 4.75e-7 and metrics["tuxai.peak_host_memory_bytes"] == 2**30
    assert metrics["tuxai.cpu_s"] == 3.25 and metrics["tuxai.ran_s"] == 10
    bare = end_metrics(PUBLIC_JOB)  # two GPUs for 10 s, no telemetry
    assert bare["tuxai.gpu_hours"] == 2 * 10 / 3600 and "tuxai.energy_kwh" not in bare


def test_the_runs_status_follows_the_jobs_end() -> None:
    for state, status in (("succeeded", "FINISHED"), ("cancelled", "KILLED"), ("failed", "FAILED")):
        assert run_status(dataclasses.replace(PUBLIC_JOB, state=JobState(state))) == status
    assert run_status(dataclasses.replace(PUBLIC_JOB, state=JobState.TIMEOUT)) == "FAILED"


def test_git_commit_of_the_workdir_and_dirty_when_a_tracked_file_changed(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "train.py").write_text("print(1)\n")
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "train.py").write_text("print(2)\n")
    assert git_commit(tmp_path) == head + "+dirty"


def test_tracking_is_on_unless_turned_off() -> None:
    assert tracking_wanted({}) and tracking_wanted({"TUXAI_MLFLOW": "on"})
    assert not any(tracking_wanted({"TUXAI_MLFLOW": word}) for word in ("off", "0", "No", "false "))


def test_E17_2_peak_gpu_memory_from_telemetry_is_a_metric_and_absent_when_no_sample_said() -> None:
    assert DETAIL.energy is not None
    sampled = dataclasses.replace(DETAIL, energy=dataclasses.replace(DETAIL.energy, gpu_memory_peak_bytes=3.5 * 2**30))
    assert end_metrics(sampled)["tuxai.peak_gpu_memory_bytes"] == 3.5 * 2**30
    unsampled = dataclasses.replace(DETAIL, energy=dataclasses.replace(DETAIL.energy, gpu_memory_peak_bytes=None))
    assert "tuxai.peak_gpu_memory_bytes" not in end_metrics(unsampled)
