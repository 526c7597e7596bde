"""A plain ``tuxai submit`` job as an MLflow run: opened by the CLI before the job is submitted, ended
by a watcher of the user's own when the job ends.

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
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tuxai.lifecycle.job_watch import lock_watcher
from tuxai.lifecycle.step_tracking import TRACKING_FAILURES
from tuxai.lifecycle.tracking import git_commit, run_params, start_tags, tracking_dir
from tuxai.model.job import JobSpec
from tuxai.model.jobfile import spec_to_dict

if TYPE_CHECKING:
    from tuxai.api.client import Client

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
    from tuxai.lifecycle.mlflow_runs import Tracker

    experiment = experiment_name()
    try:
        tracker = Tracker(experiment)
        tags = start_tags(git=git_commit(Path(spec.workdir or ".")))
        run_id = tracker.open(spec.display_name, run_params(spec_to_dict(spec)), tags)
    except TRACKING_FAILURES as error:
        say(f"note: MLflow tracking skipped for this job: {error}")
        return api.submit(spec)
    ours = tracker.job_environment(run_id)
    exports = (*((k, v) for k, v in spec.exports if k not in ours), *ours.items())
    try:
        job_id = api.submit(dataclasses.replace(spec, exports=exports))
    except BaseException:
        with contextlib.suppress(*TRACKING_FAILURES):
            tracker.client.delete_run(run_id)  # no job: no run
        raise
    try:
        tracker.tag(run_id, {"tuxai.job_id": str(job_id)})
    except TRACKING_FAILURES as error:
        say(f"note: MLflow tracking of job {job_id}: {error}")
    entry = {"home": str(api.home), "job": job_id, "run": run_id, "experiment": experiment, "uri": tracker.uri}
    watch(entry)
    return job_id


def write_ledger(folder: Path, entry: Mapping[str, object]) -> Path:
    """``entry`` as ``folder``'s ledger of its run (``RUN.json``), made whole before it appears: a watcher
    reading the folder never sees half of one."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ledger = folder / f"{entry['run']}.json"
    part = folder / f"{entry['run']}.json.part"
    part.write_text(json.dumps(dict(entry)))
    part.replace(ledger)
    return ledger


def watch(entry: Mapping[str, object]) -> bool:
    """Write ``entry``'s ledger, and start the folder's watcher in the background (its own session) unless
    one is alive — it holds the folder's lock for its life and reads new ledgers as they come. Whether one
    was started; it follows the runs of watchers that died (a reboot) too."""
    folder = open_dir()
    write_ledger(folder, entry)
    lock_fd = lock_watcher(folder)
    if lock_fd is None:
        return False
    argv = [sys.executable, "-m", "tuxai.lifecycle.job_watch", "--fork", "--lock-fd", str(lock_fd), str(folder)]
    try:  # the watcher forks and its first process exits at once: nothing is left unwaited
        with (folder.parent / "watch.log").open("a") as err:
            subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(lock_fd,),  # the lock goes on with the watcher when ours is closed
                start_new_session=True,  # a Ctrl-C or a closed terminal of the submit does not reach it
                check=False,
                timeout=60,
            )
    finally:
        os.close(lock_fd)
    return True
