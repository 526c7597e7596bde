"""T3: a container job whose podman cannot start leaves no root bind of its user's directory behind.

``podman.prepare`` binds the user's working directory at ``/run/tuxai/workdirs/<container>`` before
podman starts; when the start fails (here: the child's CPU pinning names a CPU that does not exist,
so its ``preexec`` fails after the bind), the shim's failure path must undo the bind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuxai.executor import userdir
from tuxai.executor.podman import container_name
from tuxai.executor.rundir import Launch, read_status, write_launch
from tuxai.model.container import Container

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="binds a user's directory as root")


@pytest.fixture
def nobodys_dir() -> Iterator[Path]:
    """A directory nobody owns and can enter (tmp_path is root's 0700)."""
    base = Path(tempfile.mkdtemp(prefix="tuxai-t3-"))
    base.chmod(0o755)
    work = base / "work"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    yield work
    shutil.rmtree(base)


def _bound(target: Path) -> bool:
    """``target`` is a mount point (or still there at all)."""
    return target.exists() or any(
        f" {target} " in line for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )


def test_T3_a_container_job_that_cannot_start_leaves_no_bind(tmp_path: Path, nobodys_dir: Path) -> None:
    run_dir = tmp_path / "run-1"
    launch = Launch(
        job_id=3,
        attempt=1,
        command=("true",),
        env={},
        cwd=str(nobodys_dir),
        log_path=str(tmp_path / "output.log"),
        cpus=(4095,),  # no such CPU: the child's pinning fails after the bind
        user=(NOBODY, NOBODY, ()),
        container=Container("docker.io/library/alpine:3"),
    )
    write_launch(run_dir, launch)
    target = userdir.WORKDIRS / container_name(run_dir)
    try:
        done = subprocess.run([sys.executable, "-m", "tuxai.executor.shim", str(run_dir)], timeout=30, check=False)
        assert done.returncode == 0
        status = read_status(run_dir)
        assert status is not None and status.exit_code is not None and status.exit_code != 0
        assert status.error and status.error.startswith("cannot start")
        assert not _bound(target), f"{target} is still bound after the start failed"
    finally:
        userdir.unbind(container_name(run_dir))
