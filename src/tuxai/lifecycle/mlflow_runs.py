"""Jobs as MLflow runs, written with MLflow's own client (``tuxai[mlflow]``: mlflow-skinny + SQLAlchemy).

The user's side opens a run before it submits a job and gives the job ``MLFLOW_TRACKING_URI`` and
``MLFLOW_RUN_ID``, so ``mlflow.log_metric`` in the job's code lands on the same run; when the job ends
it logs tuxai's tags and metrics (``lifecycle.tracking``) and ends the run with the job's status.
MLflow is imported here only, on first use: a pipeline whose every step is cached never loads it, and
without the extra the rest of tuxai works and this says in one line how to get it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from tuxai.errors import UsageError
from tuxai.lifecycle.tracking import (
    MLFLOW_HINT,
    artifact_location,
    end_metrics,
    job_tags,
    run_status,
    tracking_uri,
    tracking_wanted,
)
from tuxai.model.wire import PublicJob


def load_mlflow() -> Any:
    """The ``mlflow`` module, or one clear error naming the extra to install.

    Raises:
        UsageError: MLflow's client is not installed.
    """
    # MLflow 3 reports usage to its makers unless told not to: tuxai sends nothing the user did not ask for,
    # and a user who set the variable keeps their choice.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError:
        raise UsageError("MLflow tracking needs MLflow's client, which is not installed", MLFLOW_HINT) from None
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines (a new store's tables) are not ours to say
    return mlflow


def tracking_available(env: Mapping[str, str] | None = None) -> bool:
    """Whether jobs are tracked: MLflow's client importable here (checked without importing it) and
    tracking not turned off (``TUXAI_MLFLOW=off``)."""
    import importlib.util

    return tracking_wanted(env) and importlib.util.find_spec("mlflow") is not None


class Tracker:
    """Opens and ends the MLflow runs of jobs in one experiment of one tracking store."""

    def __init__(
        self,
        experiment: str,
        env: Mapping[str, str] | None = None,
        *,
        uri: str | None = None,
        artifacts: str | None = None,
    ) -> None:
        """``uri`` and ``artifacts`` given (the run desk's requests carry the submit's), ``env`` is not read."""
        mlflow = load_mlflow()
        self.uri = uri or tracking_uri(env)
        artifacts = artifacts if uri else artifact_location(env)
        if self.uri.startswith("sqlite:///"):
            from pathlib import Path

            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        self._entities = mlflow.entities
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id: str = found.experiment_id
        else:
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifacts)

    def open(self, name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> str:
        """A new run named ``name`` with ``params`` and ``tags``; its id."""
        run = self.client.create_run(self.experiment_id, tags=dict(tags), run_name=name)
        run_id: str = run.info.run_id
        param = self._entities.Param
        self.client.log_batch(run_id, params=[param(k, v) for k, v in params.items()])
        return run_id

    def delete(self, run_id: str) -> None:
        """Delete a run (its job was never submitted)."""
        self.client.delete_run(run_id)

    def find(self, key: str, value: str) -> str | None:
        """The id of a live run of this experiment tagged ``key`` = ``value`` (letters and digits), if any."""
        if not value.isalnum():
            return None
        found = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{key}` = '{value}'", max_results=1)
        return str(found[0].info.run_id) if found else None

    def job_environment(self, run_id: str) -> dict[str, str]:
        """What a job needs for ``mlflow.log_metric`` to land on run ``run_id``."""
        return {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_RUN_ID": run_id}

    def tag(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set ``tags`` on a run (the job's id once it is submitted)."""
        tag = self._entities.RunTag
        self.client.log_batch(run_id, tags=[tag(k, v) for k, v in tags.items()])

    def close(self, run_id: str, job: PublicJob, gpu_models: Mapping[str, str] | None = None) -> None:
        """Log an ended job's tags and metrics on its run and end the run with the job's status."""
        now_ms = int(time.time() * 1000)
        metric, tag = self._entities.Metric, self._entities.RunTag
        self.client.log_batch(
            run_id,
            metrics=[metric(k, v, now_ms, 0) for k, v in end_metrics(job).items()],
            tags=[tag(k, v) for k, v in job_tags(job, gpu_models).items()],
        )
        ended_ms = int(job.ended_at * 1000) if job.ended_at else now_ms
        self.client.set_terminated(run_id, status=run_status(job), end_time=ended_ms)
