"""What an MLflow run of a job holds, as plain mappings (pure but for ``git_commit``).

A job's run carries its spec as parameters, tuxai's facts as ``tuxai.*`` tags, and when the job ends
the numbers no tracking tool logs on its own: GPU-hours, peak host and GPU memory, energy (kWh) and CO2e with
the method. ``lifecycle.mlflow_runs`` writes them with MLflow's client; nothing here imports MLflow.

Where the runs go: ``MLFLOW_TRACKING_URI`` when the user set it (a team's tracking server), else a
SQLite store of the user's own under ``$XDG_DATA_HOME/tuxai/mlflow``. Only the user's side writes it
(the CLI, the pipeline runner and the user's jobs, all as the user): the root daemon never opens a
store that a user could point elsewhere.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuxai.lifecycle.records import pipelines_dir
from tuxai.model.wire import JobDetail, PublicJob

MLFLOW_HINT = "pip install 'tuxai[mlflow]'"
PARAM_VALUE_MAX = 6000  # MLflow refuses a longer parameter value
TAG_VALUE_MAX = 5000  # and cuts nothing itself: we cut, saying so


def tracking_wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether jobs are tracked when MLflow is there: yes unless ``TUXAI_MLFLOW`` is ``off`` (or 0, no, false)."""
    env = os.environ if env is None else env
    return env.get("TUXAI_MLFLOW", "").strip().lower() not in ("off", "0", "no", "false")


def tracking_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/tuxai/mlflow`` (``~/.local/share/tuxai/mlflow``): the default store and artifacts."""
    return pipelines_dir(env).parent / "mlflow"


def tracking_uri(env: Mapping[str, str] | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<tracking_dir>/mlflow.db``.

    >>> tracking_uri({"HOME": "/home/ada"})
    'sqlite:////home/ada/.local/share/tuxai/mlflow/mlflow.db'
    """
    env = os.environ if env is None else env
    return env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{tracking_dir(env) / 'mlflow.db'}"


def artifact_location(env: Mapping[str, str] | None = None) -> str | None:
    """Where a new experiment keeps artifacts: beside the default store (``file://``), or the server's
    own choice (None) when the runs go to a tracking server."""
    env = os.environ if env is None else env
    if env.get("MLFLOW_TRACKING_URI"):
        return None
    return (tracking_dir(env) / "artifacts").as_uri()


def _cut(value: str, limit: int) -> str:
    mark = " …(cut)"
    return value if len(value) <= limit else value[: limit - len(mark)] + mark


def run_params(spec: Mapping[str, Any]) -> dict[str, str]:
    """A job spec (``jobfile.spec_to_dict``'s form) → MLflow parameters: one per field, the command as a
    shell reads it; ``export`` values are left out (they may hold secrets), only their names logged.

    >>> run_params({"command": ["python", "train.py", "--lr", "0.1"], "gpus": 1, "export": {"TOKEN": "x"}})
    {'command': 'python train.py --lr 0.1', 'gpus': '1', 'export': 'TOKEN'}
    """
    params: dict[str, str] = {}
    for key, value in spec.items():
        if key == "command":
            text = shlex.join(str(w) for w in value)
        elif key == "export":
            text = " ".join(sorted(str(k) for k in dict(value)))
        elif isinstance(value, list | tuple):
            text = " ".join(str(v) for v in value)
        else:
            text = str(value)
        params[str(key)[:250]] = _cut(text, PARAM_VALUE_MAX)
    return params


def start_tags(
    *, pipeline: str = "", step: str = "", code_hash: str = "", env_hash: str = "", git: str | None = None
) -> dict[str, str]:
    """The tags known before a job is submitted: its pipeline and step, code and env hashes, git commit."""
    tags = {
        "tuxai.pipeline": pipeline,
        "tuxai.step": step,
        "tuxai.code_hash": code_hash,
        "tuxai.env_lock_hash": env_hash,
        "tuxai.git_commit": git or "",
    }
    if pipeline:
        tags["mlflow.runName"] = f"{pipeline}.{step}" if step else pipeline
    return {k: v for k, v in tags.items() if v}


def job_tags(job: PublicJob, gpu_models: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags of a job as the daemon knows it: id, user, state, node, GPUs and their models."""
    models = gpu_models or {}
    gpus = [g for g in job.gpus if g]
    tags = {
        "tuxai.job_id": str(job.id),
        "tuxai.user": job.user,
        "tuxai.state": str(job.state),
        "tuxai.node": job.node or "",
        "tuxai.gpus": ",".join(gpus),
        "tuxai.gpu_models": ",".join(sorted({models[g] for g in gpus if g in models})),
    }
    if job.reason and job.state.terminal and str(job.state) != "succeeded":
        tags["tuxai.reason"] = _cut(job.reason, TAG_VALUE_MAX)
    if isinstance(job, JobDetail) and job.energy is not None:
        methods = sorted(f"{device}={how}" for device, how in job.energy.methods.items())
        tags["tuxai.energy_method"] = _cut(", ".join(methods), TAG_VALUE_MAX)
        tags["tuxai.co2e_basis"] = f"{job.energy.grid_g_per_kwh:g} gCO2e/kWh, PUE {job.energy.pue:g}"
    return {k: v for k, v in tags.items() if v}


def end_metrics(job: PublicJob) -> dict[str, float]:
    """The numbers of an ended job: time, GPU-hours, peak host and GPU memory, energy (kWh), CO2e (kg).

    GPU-hours come from telemetry when it has the job, else the GPUs held times the time it ran.
    """
    ran_s = job.ran_s or 0.0
    metrics: dict[str, float] = {"tuxai.ran_s": ran_s, "tuxai.waited_s": job.waited_s}
    metrics["tuxai.gpu_hours"] = len(job.gpus) * ran_s / 3600
    if isinstance(job, JobDetail):
        if job.max_rss_bytes is not None:
            metrics["tuxai.peak_host_memory_bytes"] = float(job.max_rss_bytes)
        if job.cpu_s is not None:
            metrics["tuxai.cpu_s"] = job.cpu_s
        if job.energy is not None:
            metrics |= {
                "tuxai.gpu_hours": job.energy.gpu_hours,
                "tuxai.energy_kwh": job.energy.total_kwh,
                "tuxai.gpu_energy_kwh": job.energy.gpu_kwh,
                "tuxai.cpu_energy_kwh": job.energy.cpu_kwh,
                "tuxai.co2e_kg": job.energy.co2e_kg,
            }
            if job.energy.gpu_memory_peak_bytes is not None:  # the most any of its GPUs held while it ran
                metrics["tuxai.peak_gpu_memory_bytes"] = job.energy.gpu_memory_peak_bytes
    return metrics


def run_status(job: PublicJob) -> str:
    """MLflow's end status of a run for the job's state: FINISHED, KILLED (cancelled) or FAILED."""
    state = str(job.state)
    if state == "succeeded":
        return "FINISHED"
    return "KILLED" if state == "cancelled" else "FAILED"


def git_commit(workdir: Path) -> str | None:
    """``git -C WORKDIR rev-parse HEAD``, with ``+dirty`` when ``git status --porcelain`` lists changes;
    None outside a repository or without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(workdir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(workdir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")
