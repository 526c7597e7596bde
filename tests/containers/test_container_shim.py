"""Issue 19: one container attempt run by the shim itself, as `nobody`: the user inside, /dev/shm,
the variables (none on podman's command line), the mounts, the files left owned by the user."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuxai.executor import podman, userdir
from tuxai.executor.rundir import Launch, read_status, write_launch
from tuxai.model.container import Container

pytestmark = pytest.mark.containers

NOBODY = 65534
REPORT = (
    "id -u; df -k /dev/shm | tail -1; echo VAR=$TUXAI_TEST_VAR PATH=$PATH; pwd; touch $CK/saved out.txt; "
    "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status"
)


def test_I19_the_job_runs_as_the_submitting_user_with_its_shm_variables_and_mounts(
    public_tmp: Path, python_image: str
) -> None:
    tmp_path = public_tmp
    work, job_dir = tmp_path / "work", tmp_path / "jobs" / "5"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    job_dir.mkdir(parents=True)
    env = {"TUXAI_TEST_VAR": "hello there", "CK": str(job_dir / "checkpoint"), "PATH": "/host/only"}
    container = Container(python_image, 256 << 20, (), "runc")
    launch = Launch(5, 1, ("sh", "-c", REPORT), env, str(work), str(job_dir / "output.log"), job_dir=str(job_dir),
                    user=(NOBODY, NOBODY, ()), container=container)  # fmt: skip
    write_launch(job_dir / "run-1", launch)
    subprocess.run([sys.executable, "-m", "tuxai.executor.shim", str(job_dir / "run-1")], check=True, timeout=60)
    status = read_status(job_dir / "run-1")
    lines = (job_dir / "output.log").read_text().splitlines()
    assert status is not None and status.exit_code == 0, (status, lines)
    assert lines[0] == str(NOBODY)
    assert lines[1].split()[1] == str(256 << 10)  # /dev/shm as asked, in KiB
    assert lines[2].startswith("VAR=hello there PATH=") and "/host/only" not in lines[2]
    assert lines[3] == str(work)
    assert lines[4].split() == ["CapBnd:", "0000000000000000"] and lines[5].split() == ["NoNewPrivs:", "1"]
    assert (job_dir / "checkpoint" / "saved").stat().st_uid == NOBODY and (work / "out.txt").stat().st_uid == NOBODY
    assert "hello there" in (job_dir / "run-1" / "container.env").read_text()
    assert (job_dir / "run-1" / "container.env").stat().st_mode & 0o777 == 0o600


def test_I19_a_workdir_the_user_cannot_reach_on_the_host_is_not_mounted_for_it(
    public_tmp: Path, python_image: str
) -> None:
    tmp_path = public_tmp
    shut = tmp_path / "shut"  # root's, 0700: nobody cannot pass it on the host
    (shut / "open").mkdir(parents=True)
    os.chmod(shut, 0o700)
    os.chmod(shut / "open", 0o777)
    (shut / "open" / "secret").write_text("root's")
    os.symlink(shut / "open", tmp_path / "link")
    for workdir in (shut / "open", tmp_path / "link"):
        job_dir = tmp_path / "jobs" / workdir.name
        job_dir.mkdir(parents=True)
        launch = Launch(6, 1, ("cat", "secret"), {}, str(workdir), str(job_dir / "output.log"), job_dir=str(job_dir),
                        user=(NOBODY, NOBODY, ()), container=Container(python_image, runtime="runc"))  # fmt: skip
        write_launch(job_dir / "run-1", launch)
        subprocess.run([sys.executable, "-m", "tuxai.executor.shim", str(job_dir / "run-1")], check=True, timeout=60)
        status = read_status(job_dir / "run-1")
        assert status is not None and status.exit_code == 127, (status, (job_dir / "output.log").read_text())
        assert f"cannot enter working directory {workdir} as the job's user" in status.error
        assert "root's" not in (job_dir / "output.log").read_text()


def test_S10_a_workdir_swapped_for_a_link_after_the_check_is_not_what_podman_mounts(
    public_tmp: Path, python_image: str
) -> None:
    home = public_tmp / "home"  # the user's: it may rename and link there
    (home / "work").mkdir(parents=True)
    (home / "work" / "mine").write_text("nobody's\n")
    for path in (home, home / "work", home / "work" / "mine"):
        os.chown(path, NOBODY, NOBODY)
    shut = public_tmp / "shut"  # root's, 0700: nobody cannot pass it on the host
    (shut / "open").mkdir(parents=True)
    os.chmod(shut, 0o700)
    os.chmod(shut / "open", 0o777)
    (shut / "open" / "secret").write_text("root's\n")
    run_dir = public_tmp / "jobs" / "7" / "run-1"
    (run_dir.parent / "checkpoint").mkdir(parents=True)
    run_dir.mkdir()
    container = Container(python_image, runtime="runc")
    launch = Launch(7, 1, ("sh", "-c", "cat secret mine"), {}, str(home / "work"), str(run_dir.parent / "output.log"),
                    job_dir=str(run_dir.parent), user=(NOBODY, NOBODY, ()), container=container)  # fmt: skip
    argv, _ = podman.prepare(launch, container, run_dir)  # the check: nobody enters its own directory
    try:
        swap = f"mv {home}/work {home}/old && ln -s {shut}/open {home}/work"
        subprocess.run(["sh", "-c", swap], user=NOBODY, group=NOBODY, check=True, timeout=10)
        done = subprocess.run([*argv, *launch.command], env=podman.podman_environment(), cwd=run_dir,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    finally:
        podman.remove_container(run_dir)
    assert "root's" not in done.stdout, done.stdout
    assert "nobody's" in done.stdout, (done.stdout, done.stderr)  # the directory checked is the one mounted
    assert not (userdir.WORKDIRS / podman.container_name(run_dir)).exists()  # its bind undone with the container
