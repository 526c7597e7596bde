"""Issue 19, rootless podman: a container attempt of a user's own daemon (its shim runs as `nobody`, podman
rootless with ``--userns=keep-id``), and the one-line refusal when the user has no subordinate ids."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuxai.executor.rundir import Launch, read_status, write_launch
from tuxai.images.build import cache_root
from tuxai.images.recipe import Recipe
from tuxai.model.container import Container

pytestmark = pytest.mark.containers

NOBODY = 65534
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
RANGE = "nobody:300000:65536\n"


def _as_nobody(argv: list[str], home: Path, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    """``argv`` as nobody, with its own home and runtime directory (what a user's daemon has)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"), "LANG": "C.UTF-8"}
    setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run([*setpriv, *argv], env=env, cwd=home, capture_output=True, text=True, timeout=timeout_s)


NOBODY_HOME = Path("/var/cache/tuxai/tier-rootless")
"""nobody's home for the tier: its podman store kept between runs (as the image cache is), so the image
is pulled into it once, not at every run (a pull of the Python image: 4-11 s here)."""


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    """nobody's home (its podman store); the pause process its rootless podman leaves is ended after."""
    home = NOBODY_HOME
    config = home / ".config" / "containers"
    config.mkdir(parents=True, exist_ok=True)
    (home / "run").mkdir(mode=0o700, exist_ok=True)
    # the kernel's own overlay in a user namespace (6.18 here): podman 4.3 picks vfs, which copies the
    # image at the pull and again per container (a run 6.4 s against 1.1 s; /dev/fuse is root's only here)
    (config / "storage.conf").write_text('[storage]\ndriver = "overlay"\n')
    for path in (home, home / "run", home / ".config", config, config / "storage.conf"):
        os.chown(path, NOBODY, NOBODY)
    try:
        yield home
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((home / "run" / "libpod" / "tmp" / "pause.pid").read_text()), signal.SIGKILL)


@pytest.fixture
def nobody_subids() -> Iterator[None]:
    """A range of 65536 subordinate ids for nobody (what `usermod --add-subuids` writes), removed after."""
    before = [p.read_text() if p.exists() else None for p in SUBID_FILES]
    for path, text in zip(SUBID_FILES, before, strict=True):
        path.write_text((text or "") + RANGE)
    try:
        yield
    finally:
        for path, text in zip(SUBID_FILES, before, strict=True):
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text)


def test_I19_a_users_daemon_without_subordinate_ids_refuses_an_image_in_one_line(nobody_home: Path) -> None:
    assert not any(line.startswith("nobody:") for p in SUBID_FILES if p.exists() for line in p.read_text().split())
    check = (
        "from tuxai.daemon.containers import check_container_submit; from tuxai.model.job import JobSpec; "
        "check_container_submit(JobSpec(('true',), image='localhost/tuxai/x:1'))"
    )
    done = _as_nobody([sys.executable, "-c", check], nobody_home)
    assert done.returncode != 0
    assert "this daemon runs as nobody, whose rootless podman has no subordinate ids" in done.stderr
    assert "UsageError" in done.stderr  # the daemon answers it as a 4xx with the hint below
    from tuxai.model.container import SUBID_REMEDY

    assert SUBID_REMEDY.format(user="nobody") == (
        "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody && podman system migrate"
    )


def test_I19_a_users_own_daemon_runs_its_container_job_through_its_rootless_podman(
    nobody_home: Path, nobody_subids: None, python_image: str, public_tmp: Path
) -> None:
    key = Recipe(packages=("python3-minimal",), name="tier-python").key
    assert python_image.endswith(key[:16])
    if _as_nobody(["podman", "image", "exists", python_image], nobody_home).returncode != 0:
        pulled = _as_nobody(["podman", "pull", "--quiet", f"oci:{cache_root() / key}"], nobody_home)
        assert pulled.returncode == 0, pulled.stderr
        tagged = _as_nobody(["podman", "tag", pulled.stdout.split()[-1], python_image], nobody_home)
        assert tagged.returncode == 0, tagged.stderr
    job_dir = public_tmp / "jobs" / "3"
    job_dir.mkdir(parents=True)
    os.chown(public_tmp / "jobs", NOBODY, NOBODY)
    os.chown(job_dir, NOBODY, NOBODY)
    launch = Launch(3, 1, ("sh", "-c", "id -u; touch $TUXAI_CHECKPOINT_DIR/saved"),
                    {"TUXAI_CHECKPOINT_DIR": str(job_dir / "checkpoint")}, "", str(job_dir / "output.log"),
                    job_dir=str(job_dir), container=Container(python_image, 64 << 20, (), "runc"))  # fmt: skip
    write_launch(job_dir / "run-1", launch)
    for path in (job_dir / "run-1", *(job_dir / "run-1").iterdir()):
        os.chown(path, NOBODY, NOBODY)
    shim = _as_nobody([sys.executable, "-m", "tuxai.executor.shim", str(job_dir / "run-1")], nobody_home)
    assert shim.returncode == 0, shim.stderr
    status = read_status(job_dir / "run-1")
    output = (job_dir / "output.log").read_text()
    assert status is not None and status.exit_code == 0, (status, output, (job_dir / "run-1" / "shim.log"))
    assert output.split()[0] == str(NOBODY)  # keep-id: the user inside is the daemon's user
    assert (job_dir / "checkpoint" / "saved").stat().st_uid == NOBODY  # its mounts, written as itself
