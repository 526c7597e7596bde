"""A rank runs as its job's user or not at all (security issue S1): a shim that cannot switch users
refuses another uid's job, and the Ray launcher refuses a launch that names no user. Both failed on
the code before the fix (the job ran as the shim's own user; the launcher started the shim)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.test_identity import NOBODY
from tuxai.errors import PermissionDenied
from tuxai.executor.ray_node import NodeRunner
from tuxai.executor.rundir import Launch, Phase, read_status, write_launch
from tuxai.executor.shim import EXIT_CANNOT_START, run_attempt


def _as_nobody(run_dir: Path) -> int:
    """The shim run on ``run_dir`` in a child that became nobody; the child's exit code. (The interpreter is
    root's, under /root: nobody cannot exec it, so the child forks from this one; pytest's directories are
    root's 0700: the child enters the run directory's parent first, and the shim is given a relative path.)"""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 1
        try:
            os.chdir(run_dir.parent)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = run_attempt(Path(run_dir.name))
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_S1_a_shim_that_cannot_switch_users_refuses_another_users_job(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: the shim runs as nobody")
    run_dir, marker = tmp_path / "run-1", tmp_path / "ran"  # nobody's, as a worker's shared account owns its node's
    command = ("/bin/sh", "-c", "echo ran > ran")  # in the shim's directory (cwd "")
    launch = Launch(7, 1, command, {"PATH": "/usr/bin:/bin"}, "", "output.log", user=(0, 0, ()))
    write_launch(run_dir, launch)  # root's job, handed to a shim that is not root
    for path in (tmp_path, run_dir, *run_dir.iterdir()):
        os.chown(path, NOBODY, NOBODY)
    assert _as_nobody(run_dir) == 0
    status = read_status(run_dir)
    assert status is not None and status.phase is Phase.EXITED, status
    assert status.exit_code == EXIT_CANNOT_START and "cannot switch users" in status.error, status
    assert "uid 0" in status.error and f"uid {NOBODY}" in status.error, status.error
    assert not marker.exists(), "root's job ran as nobody"


def test_S1_the_ray_launcher_refuses_a_rank_that_names_no_user(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    runner = NodeRunner(str(tmp_path / "root"))
    command = ("/bin/sh", "-c", f"echo ran > {marker}")
    with pytest.raises(PermissionDenied, match="names no user"):  # anyone who reaches Ray may call start
        runner.start("tuxai-anyone-r0", Launch(7, 1, command, {}, "/", str(tmp_path / "output.log")))
    assert not (tmp_path / "root" / "tuxai-anyone-r0").exists()
    assert not marker.exists()
