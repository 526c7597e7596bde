"""A TensorFlow job and a PyTorch job, each in its own uv-built environment, side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.daemon_helpers import DaemonProcess
from tuxai.envs import PipSettings, ensure_env, parse_pip_config, read_pip_settings, uv_flags
from tuxai.errors import UsageError

JOBS = REPO / "examples" / "jobs"


def submit(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUXAI_HOME": str(home)}
    argv = [sys.executable, "-m", "tuxai", "submit", "--json", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=JOBS, timeout=900, check=False)


@pytest.mark.timeout(900)
def test_tensorflow_and_pytorch_jobs_in_their_own_envs_side_by_side(daemon: DaemonProcess) -> None:
    # Held until both environments are built (a cold uv cache downloads TensorFlow), then let go together.
    torch_done = submit(daemon.home, "--hold", "--env", "requirements-torch.txt", "-n", "torch", "--", "python",
                        "train_torch.py")  # fmt: skip
    assert torch_done.returncode == 0, torch_done.stderr
    assert "building the job environment" in torch_done.stderr  # the progress a person sees
    tf_done = submit(daemon.home, "--hold", "--env", "requirements-tf.txt", "-n", "tf", "--", "python", "train_tf.py")
    assert tf_done.returncode == 0, tf_done.stderr
    ids = [json.loads(torch_done.stdout)["id"], json.loads(tf_done.stdout)["id"]]
    for job_id in ids:
        daemon.client.release(job_id)
    jobs = daemon.wait_all(ids, timeout_s=300)
    torch_job, tf_job = (jobs[i] for i in ids)
    assert torch_job.state == "succeeded", daemon.log(ids[0])
    assert tf_job.state == "succeeded", daemon.log(ids[1])
    torch_log, tf_log = daemon.log(ids[0]), daemon.log(ids[1])
    assert "torch 2.13.0+cpu" in torch_log and "tensorflow importable: False" in torch_log
    assert "tensorflow 2.21.0" in tf_log and "torch importable: False" in tf_log
    assert "done: loss 0.00000, w 3.000, b -1.000" in torch_log and "w 3.000, b -1.000" in tf_log
    # Side by side: their runs overlap in time.
    assert tf_job.started_at < torch_job.ended_at and torch_job.started_at < tf_job.ended_at

    # A second submit reuses the built environment: no build, same path.
    prefix = "import sys; print(sys.prefix)"
    again = submit(daemon.home, "--env", "requirements-torch.txt", "--", "python", "-c", prefix)
    assert again.returncode == 0 and "building" not in again.stderr
    job_id = json.loads(again.stdout)["id"]
    daemon.wait_all([job_id])
    assert daemon.log(job_id).strip() == torch_job.spec.env_path

    # A named environment: made once, then used by its name.
    env = {**os.environ, "TUXAI_HOME": str(daemon.home)}
    tuxai = [sys.executable, "-m", "tuxai"]
    made = subprocess.run([*tuxai, "env", "create", "torch", "requirements-torch.txt"], cwd=JOBS, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = json.loads(subprocess.run([*tuxai, "env", "ls", "--json"], env=env, capture_output=True, text=True).stdout)
    assert {e["names"] for e in listed} == {"torch", ""} and len(listed) == 2
    named = submit(daemon.home, "--env", "torch", "--", "python", "-c", prefix)
    assert named.returncode == 0, named.stderr
    job_id = json.loads(named.stdout)["id"]
    daemon.wait_all([job_id])
    assert daemon.log(job_id).strip() == torch_job.spec.env_path
    unknown = submit(daemon.home, "--env", "nosuchenv", "--", "true")
    assert unknown.returncode == 2 and "no such file, directory or named environment" in unknown.stderr


def test_pip_settings_are_carried_to_uv() -> None:
    text = (
        ":env:.find-links='/opt/wheels'\n"
        "global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'\n"
        "global.index-url='https://mirror.example/simple'\n"
        "global.cert='/etc/ssl/certs/ca-certificates.crt'\n"
        "install.no-cache-dir='1'\n"
    )
    settings = parse_pip_config(text)
    assert settings.find_links == ("/opt/wheels",)
    assert settings.extra_index_urls == ("file:///opt/pypi/simple", "file:///opt/pypi-more/simple")
    assert settings.origins["find-links"] == "PIP_* environment"
    flags = uv_flags(settings)
    assert flags[:2] == ["--index-url", "https://mirror.example/simple"]
    assert flags.count("--extra-index-url") == 2 and flags[6:8] == ["--find-links", "/opt/wheels"]
    assert flags[-2:] == ["--index-strategy", "unsafe-best-match"]
    assert uv_flags(PipSettings()) == []


def test_this_machines_pip_settings_are_read() -> None:
    settings = read_pip_settings()
    expected = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    assert settings == parse_pip_config(expected)


def test_bad_requirements_fail_with_one_clear_error(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("this-package-does-not-exist-anywhere==0.0.1\n")
    with pytest.raises(UsageError, match=r"building the environment from .* failed"):
        ensure_env(str(requirements), tmp_path / "cache", output=lambda _: None)
    assert not any((tmp_path / "cache").glob("*/bin"))  # nothing half-built left to reuse
    with pytest.raises(UsageError, match="not a requirements file"):
        ensure_env(str(tmp_path / "missing.txt"), tmp_path / "cache")
