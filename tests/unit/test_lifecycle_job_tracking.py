"""Which plain `tuxai submit` jobs become MLflow runs (lifecycle.job_tracking), decided without MLflow."""

from __future__ import annotations

import importlib.util

import pytest

from tuxai.lifecycle.job_tracking import experiment_name, job_tracked
from tuxai.model.array import ArraySpec
from tuxai.model.job import JobSpec

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
