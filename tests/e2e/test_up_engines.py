"""``tuxai up`` runs jobs on one engine: contradictory engine flags are refused in one line (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuxai.errors import ConfigError
from tuxai.settings import load_daemon_settings


def test_E15_ray_and_slurm_together_are_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        load_daemon_settings({"ray": "127.0.0.2:6379", "slurm": True}, env={})
    assert refused.value.message == "--ray 127.0.0.2:6379 and --slurm name two engines: the daemon runs its jobs on one"
    with pytest.raises(ConfigError) as also:  # the same from the environment: one engine, whatever says it
        load_daemon_settings({"slurm": True}, env={"TUXAI_RAY": "auto"})
    assert also.value.message.startswith("--ray auto and --slurm name two engines")


def test_E15_slurm_python_without_slurm_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        load_daemon_settings({"ray": "auto", "slurm_python": "/usr/bin/python3"}, env={})
    assert refused.value.message == "--slurm-python is for --slurm only: no Slurm engine was asked"
    assert load_daemon_settings({"ray": "auto"}, env={}).ray == "auto"  # one engine: fine


def test_E15_tuxai_up_with_two_engines_says_so_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "TUXAI_HOME": str(tmp_path / "home")}
    env = {k: v for k, v in env.items() if not k.startswith(("TUXAI_RAY", "TUXAI_SLURM"))}
    argv = [sys.executable, "-m", "tuxai", "up", "--ray", "127.0.0.2:6379", "--slurm"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        "error: --ray 127.0.0.2:6379 and --slurm name two engines: the daemon runs its jobs on one (tuxai up --ray"
    ), done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "home" / "tuxai.sock").exists()
