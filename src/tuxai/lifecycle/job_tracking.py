"""A plain ``tuxai submit`` job as an MLflow run: opened before the job is submitted — by the user's watcher,
asked over its run desk (``lifecycle.desk_client``), so the submit never imports MLflow — and ended by that
watcher when the job ends.

Everything here runs as the user who submits (the CLI, then ``lifecycle.job_watch`` in the background):
the root daemon never imports MLflow and never writes a user's store. The watcher asks the daemon for the
job until it ends, then logs the same tags and metrics as a pipeline step's run (``lifecycle.tracking``)
and ends the run with the job's status. Each run still open has a ledger file under
``<tracking_dir>/open/``, and the folder has one watcher for all of them, started by the submit that finds
none alive (one that died, a reboot, is replaced by the next tracked submit).

Untracked, with no word: MLflow's client not installed, ``TUXAI_MLFLOW=off``, an array or an interactive
session, or a job whose exports give its own ``MLFLOW_RUN_ID``. A store that fails is said in one line
and the job is submitted untracked: losing the record of a job must not lose the job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tuxai.lifecycle.job_watch import lock_watcher, start_watcher
from tuxai.lifecycle.run_desk import Unserved, open_path
from tuxai.lifecycle.step_tracking import TRACKING_FAILURES
from tuxai.lifecycle.tracking import artifact_location, git_commit, run_params, start_tags, tracking_dir, tracking_uri
from tuxai.model.job import JobSpec
from tuxai.model.jobfile import spec_to_dict

if TYPE_CHECKING:
    from tuxai.api.client import Client


class Runs(Protocol):
    """Where a submit's run is opened: the watcher's desk (``DeskRuns``) or MLflow here (``Tracker``)."""

    uri: str

    def open(self, name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> str:
        """A new run; its id."""

    def tag(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags on a run."""

    def delete(self, run_id: str) -> None:
        """Delete a run."""


DEFAULT_EXPERIMENT = "tuxai"  # plain jobs' experiment, unless MLFLOW_EXPERIMENT_NAME names another


def experiment_name(env: Mapping[str, str] | None = None) -> str:
    """``MLFLOW_EXPERIMENT_NAME`` when set, else ``tuxai``.

    >>> experiment_name({}), experiment_name({"MLFLOW_EXPERIMENT_NAME": "vision"})
    ('tuxai', 'vision')
    """
    env = os.environ if env is None else env
    return env.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def job_tracked(spec: JobSpec, env: Mapping[str, str] | None = None) -> bool:
    """Whether submitting ``spec`` opens an MLflow run: the client installed and tracking on (checked
    without importing MLflow), a batch job that is not an array, no ``MLFLOW_RUN_ID`` of its own."""
    from tuxai.lifecycle.mlflow_runs import tracking_available

    if spec.array is not None or spec.session or any(k == "MLFLOW_RUN_ID" for k, _ in spec.exports):
        return False
    return tracking_available(env)


def open_dir(env: Mapping[str, str] | None = None) -> Path:
    """``<tracking_dir>/open``: one JSON file per run whose job has not been seen ending."""
    return tracking_dir(env) / "open"


def submit_tracked(api: Client, spec: JobSpec, say: Callable[[str], None]) -> int:
    """Submit ``spec`` through ``api``, as an MLflow run when ``job_tracked``; the job's id."""
    if api.home is None or not job_tracked(spec):
        return api.submit(spec)
    experiment = experiment_name()
    try:
        tags = start_tags(git=git_commit(Path(spec.workdir or ".")))
        tracker, run_id = open_run(experiment, spec.display_name, run_params(spec_to_dict(spec)), tags)
    except TRACKING_FAILURES as error:
        say(f"note: MLflow tracking skipped for this job: {error}")
        return api.submit(spec)
    ours = {"MLFLOW_TRACKING_URI": tracker.uri, "MLFLOW_RUN_ID": run_id}
    exports = (*((k, v) for k, v in spec.exports if k not in ours), *ours.items())
    try:
        job_id = api.submit(dataclasses.replace(spec, exports=exports))
    except BaseException:
        with contextlib.suppress(*TRACKING_FAILURES):
            tracker.delete(run_id)  # no job: no run
        raise
    try:
        tracker.tag(run_id, {"tuxai.job_id": str(job_id)})
    except TRACKING_FAILURES as error:
        say(f"note: MLflow tracking of job {job_id}: {error}")
    entry = {"home": str(api.home), "job": job_id, "run": run_id, "experiment": experiment, "uri": tracker.uri}
    watch(entry)
    return job_id


def open_run(experiment: str, name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> tuple[Runs, str]:
    """A new run in the user's store, opened by the user's watcher; by MLflow here when the watcher cannot
    serve the request (another version, other ``MLFLOW_*`` variables). Where it was opened, and its id."""
    from tuxai.lifecycle.desk_client import DeskRuns

    desk = DeskRuns(open_dir(), experiment, tracking_uri(), artifact_location())
    try:
        return desk, desk.open(name, params, tags)
    except Unserved:
        from tuxai.lifecycle.mlflow_runs import Tracker

        tracker = Tracker(experiment)
        return tracker, tracker.open(name, params, tags)


def write_ledger(folder: Path, entry: Mapping[str, object]) -> Path:
    """``entry`` as ``folder``'s ledger of its run (``RUN.json``), made whole before it appears: a watcher
    reading the folder never sees half of one. The folder is made and written under a path no other user
    can change, never through a link (``open_path``, U4).

    Raises:
        TuxaiError: a part of the folder's path is a link, another user's or writable by others.
    """
    ledger, part = f"{entry['run']}.json", f"{entry['run']}.json.part"
    folder_fd = open_path(folder, create=True)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(part, flags, 0o600, dir_fd=folder_fd), "w") as handle:
            handle.write(json.dumps(dict(entry)))
        os.replace(part, ledger, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    finally:
        os.close(folder_fd)
    return folder / ledger


def watch(entry: Mapping[str, object]) -> bool:
    """Write ``entry``'s ledger, and start the folder's watcher in the background (its own session) unless
    one is alive — it holds the folder's lock for its life and reads new ledgers as they come. Whether one
    was started; it follows the runs of watchers that died (a reboot) too."""
    folder = open_dir()
    write_ledger(folder, entry)
    lock_fd = lock_watcher(folder)
    if lock_fd is None:
        return False
    start_watcher(folder, lock_fd)
    return True
