"""Quotas with a real store and a real daemon process: GPU-hours in the window count every attempt
of a job from its history, clipped to the window; an array counts its tasks against max_pending;
a bad ``limits:`` stops the daemon with one line that names the file and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_helpers import TWO_GPUS
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.limits import check_submit, window_use
from tuxai.errors import UsageError
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict
from tuxai.scheduler.quotas import Caps, Quotas
from tuxai.store.jobs import Store

ROOT = ("root", 0, 0, ())


def test_gpu_hours_count_every_attempt_of_a_job_clipped_to_the_window(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuxai.db")
    try:
        two = store.submit(spec_from_dict({"command": ["true"], "gpus": 2}), ROOT, {}, 0.0)
        store.transition(two, JobState.RUNNING, 1000.0, "")
        store.transition(two, JobState.REQUEUED, 2000.0, "preempted", ended_at=2000.0)  # 500 s in the window
        store.transition(two, JobState.RUNNING, 3000.0, "")  # running: 1000 s up to now
        old = store.submit(spec_from_dict({"command": ["true"], "gpus": 1}), ("bob", 7, 7, ()), {}, 0.0)
        store.transition(old, JobState.RUNNING, 100.0, "")
        store.transition(old, JobState.SUCCEEDED, 1400.0, "", ended_at=1400.0)  # before the window
        used = window_use(Quotas(default=Caps(gpu_hours=1), window_s=2500.0), store, now=4000.0)
        assert used == {"root": 2 * 1500.0, "@root": 2 * 1500.0}
        assert window_use(Quotas(default=Caps(max_gpus=1)), store, now=4000.0) == {}  # nothing counts GPU-hours
    finally:
        store.close()


def test_an_array_counts_its_tasks_against_max_pending(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuxai.db")
    try:
        config = DaemonConfig(tmp_path, load_inventory_file(TWO_GPUS), quotas=Quotas(default=Caps(max_pending=10)))
        caller = Caller("root", 0, 0)
        store.submit(spec_from_dict({"command": ["true"], "hold": True}), ROOT, {}, 0.0)
        array = spec_from_dict({"command": ["true"], "array": "0-9"})
        with pytest.raises(UsageError) as refused:
            check_submit(config, store, array, caller)
        assert refused.value.message == (
            "you have 1 jobs waiting and this submit adds 10, the limit is 10 (limits.default.max_pending)"
        )
        assert check_submit(config, store, spec_from_dict({"command": ["true"], "array": "0-8"}), caller)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            "limits:\n  users:\n    root: {max_gpus: many}\n",
            "limits.users.root.max_gpus must be a number ≥ 0, got 'many'",
        ),
        ("limits:\n  groups:\n    no-such-group-xyz: {max_gpus: 1}\n", "limits.groups: no group 'no-such-group-xyz'"),
        ("limits:\n  users:\n    no-such-user-xyz: {max_gpus: 1}\n", "limits.users: no user 'no-such-user-xyz'"),
    ],
)
def test_a_bad_limits_section_stops_the_daemon_naming_the_file_and_the_field(
    tmp_path: Path, limits: str, message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(limits)
    argv = [sys.executable, "-m", "tuxai.api.server", "--home", str(tmp_path / "home"), "--inventory", str(TWO_GPUS)]
    done = subprocess.run([*argv, "--config", str(config)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {config}: {message}"), line
