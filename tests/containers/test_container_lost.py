"""Issue 19: what podman keeps of a lost container attempt (its shim SIGKILLed with the job) is removed
by the executor's ``kill_lost``, found from the handle alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tuxai.executor.attempt import AttemptHandle
from tuxai.executor.local import LocalExecutor
from tuxai.executor.podman import container_name
from tuxai.executor.rundir import Launch, write_launch
from tuxai.model.container import Container

pytestmark = pytest.mark.containers


def _exists(name: str) -> bool:
    return subprocess.run(["podman", "container", "exists", name], check=False).returncode == 0


def test_I19_kill_lost_removes_the_container_podman_kept(tmp_path: Path, python_image: str) -> None:
    run_dir = tmp_path / "jobs" / "3" / "run-1"
    launch = Launch(3, 1, ("true",), {}, "", str(tmp_path / "out.log"), job_dir=str(run_dir.parent),
                    container=Container(python_image, runtime="runc"))  # fmt: skip
    run_dir.parent.mkdir(parents=True)
    write_launch(run_dir, launch)
    name = container_name(run_dir)
    subprocess.run(["podman", "create", "--name", name, python_image, "true"], capture_output=True, check=True)
    try:
        assert _exists(name)
        LocalExecutor(tmp_path).kill_lost(AttemptHandle(str(run_dir)))
        assert not _exists(name)
    finally:
        subprocess.run(["podman", "rm", "--force", name], capture_output=True, check=False)
