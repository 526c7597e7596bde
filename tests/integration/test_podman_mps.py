"""U1: a GPU-share container job mounts the MPS pipe directory only where it is root's through no link.

Root's podman mounted ``/tmp/nvidia-mps`` by path: any user could make that path a link to a
root-only folder (the container read it) or a folder of its own (every other user's share container
mounted it read-write). ``podman.prepare`` now walks the path through no link, requires every
component root's and writable by no one else, and binds the directory by descriptor.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuxai.executor import podman, userdir
from tuxai.executor.podman import container_name, prepare
from tuxai.executor.rundir import Launch
from tuxai.model.container import Container

NOBODY = 65534
SHARE = {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "50"}

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="binds as root; the attacker is nobody (uid 65534)")


@contextlib.contextmanager
def _prepared(run_dir: Path, pipes: Path) -> Iterator[list[str]]:
    """podman's line for a share job of nobody's, the pipe directory at ``pipes``; unbound after."""
    run_dir.mkdir(parents=True)
    launch = Launch(7, 1, ("true",), dict(SHARE), "", str(run_dir / "out.log"), user=(NOBODY, NOBODY, ()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(podman, "MPS_PIPES", str(pipes))
        try:
            yield prepare(launch, Container("docker.io/library/alpine:3"), run_dir)[0]
        finally:
            userdir.unbind(container_name(run_dir))


def test_U1_an_mps_pipe_dir_that_is_a_link_or_a_users_is_not_mounted(tmp_path: Path) -> None:
    secret = tmp_path / "rootonly"
    secret.mkdir(mode=0o700)
    users = tmp_path / "users"
    users.mkdir(mode=0o755)
    os.chown(users, NOBODY, NOBODY)
    (tmp_path / "link").symlink_to(secret)
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    (users / "inner").mkdir()  # root's, but in nobody's folder: nobody could swap it
    cases = {"link": "a link", "users": "owned by uid 65534", "open": "writable by other users",
             "users/inner": "owned by uid 65534"}  # fmt: skip
    for number, (name, why) in enumerate(cases.items()):
        run_dir = tmp_path / "jobs" / "7" / f"run-{number}"
        with pytest.raises(subprocess.SubprocessError, match=why) as caught, _prepared(run_dir, tmp_path / name):
            pass
        assert "MPS pipe directory" in str(caught.value) and "\n" not in str(caught.value)
        assert not os.path.lexists(userdir.WORKDIRS / f"{container_name(run_dir)}{userdir.MPS}")


def test_U1_a_root_owned_0755_mps_pipe_dir_is_bound_by_descriptor(tmp_path: Path) -> None:
    pipes = tmp_path / "mps"
    pipes.mkdir(mode=0o755)
    (pipes / "control").write_text("pipe")
    run_dir = tmp_path / "jobs" / "7" / "run-1"
    bound = userdir.WORKDIRS / f"{container_name(run_dir)}{userdir.MPS}"
    with _prepared(run_dir, pipes) as argv:
        assert "--ipc=host" in argv and f"--volume={bound}:{pipes}" in argv
        assert (bound / "control").read_text() == "pipe"  # the very directory checked, through the bind
    assert not bound.exists()
