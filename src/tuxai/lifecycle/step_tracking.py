"""A pipeline run's steps as MLflow runs: what the runner calls at submit and at a job's end.

The tracker is made on the first step submitted (a run whose every step is cached never loads MLflow);
a tracking store that fails (a server down, a store unreadable) is said once and the pipeline goes on
untracked: losing the record of a run must not lose the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tuxai.errors import TuxaiError
from tuxai.lifecycle.tracking import git_commit, run_params, start_tags
from tuxai.model.job import JobSpec
from tuxai.model.jobfile import spec_to_dict
from tuxai.model.wire import PublicJob

if TYPE_CHECKING:
    from tuxai.api.client import Client
    from tuxai.lifecycle.mlflow_runs import Tracker
    from tuxai.lifecycle.records import StepRecord

# What a tracking store may raise besides ours: MLflow's own errors, SQLAlchemy's, a server's HTTP errors.
TRACKING_FAILURES = (TuxaiError, OSError, RuntimeError, ValueError, LookupError)


class StepTracking:
    """Opens a step's MLflow run before its job is submitted and ends it when the job ends."""

    def __init__(self, make: Callable[[str], Tracker] | None, pipeline: str, say: Callable[[str], None]) -> None:
        self.make, self.pipeline, self.say = make, pipeline, say
        self._made: Tracker | None = None
        self._broken = False

    def _tracker(self) -> Tracker | None:
        """The pipeline's experiment's tracker, made on first use (None when untracked or failed)."""
        if self.make is None or self._broken:
            return None
        if self._made is None:
            self._made = self.make(self.pipeline)
        return self._made

    def _failed(self, error: Exception) -> None:
        if not self._broken:
            self.say(f"MLflow tracking stopped for this run: {error}")
        self._broken = True

    def open(self, spec: JobSpec, record: StepRecord, workdir: Path) -> StepRecord:
        """The step's record with its new MLflow run's id (unchanged when untracked)."""
        try:
            tracker = self._tracker()
            if tracker is None:
                return record
            tags = start_tags(
                pipeline=self.pipeline,
                step=record.name,
                code_hash=record.code_hash,
                env_hash=record.env_hash,
                git=git_commit(workdir),
            )
            run_id = tracker.open(f"{self.pipeline}.{record.name}", run_params(spec_to_dict(spec)), tags)
        except TRACKING_FAILURES as error:
            self._failed(error)
            return record
        return dataclasses.replace(record, mlflow_run=run_id)

    def exports(self, exports: tuple[tuple[str, str], ...], record: StepRecord) -> tuple[tuple[str, str], ...]:
        """A job's exports with ``MLFLOW_TRACKING_URI`` and ``MLFLOW_RUN_ID`` of its step's run (ours win)."""
        tracker = self._made
        if tracker is None or not record.mlflow_run:
            return exports
        ours = tracker.job_environment(record.mlflow_run)
        return (*((k, v) for k, v in exports if k not in ours), *ours.items())

    def submitted(self, record: StepRecord, job_id: int) -> None:
        """Tag the step's run with its job's id."""
        tracker = self._made
        if tracker is None or not record.mlflow_run:
            return
        try:
            tracker.tag(record.mlflow_run, {"tuxai.job_id": str(job_id)})
        except TRACKING_FAILURES as error:
            self._failed(error)

    def close(self, record: StepRecord, job: PublicJob, client: Client) -> None:
        """End the step's run with the job's tags and metrics (its GPUs' models asked of the daemon)."""
        if not record.mlflow_run:
            return
        try:
            tracker = self._tracker()  # made here when the run was opened by the run --resume goes on with
            if tracker is None:
                return
            models = {g.uuid: g.name for g in client.gpus() if g.uuid} if any(job.gpus) else {}
            tracker.close(record.mlflow_run, job, models)
        except TRACKING_FAILURES as error:
            self._failed(error)
