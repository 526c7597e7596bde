"""`tuxai gpus` and `ls` on a simulated DGX: MIG instances and slices in words, and a GPU that runs a
process tuxai did not start kept off limits (unless the admin's --allow-foreign-gpu-use) and shown
busy with that process's pid and user (issue 13)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.daemon_helpers import DaemonProcess, finish, shell

DGX = REPO / "examples" / "inventories" / "dgx-a100.yaml"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    argv = [sys.executable, "-m", "tuxai", args[0], "--home", str(home), *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, env=env)


@pytest.fixture
def outsider() -> Iterator[tuple[int, str]]:
    """A real process tuxai did not start (as nobody when we are root): its pid and user."""
    user = 65534 if os.getuid() == 0 else None
    process = subprocess.Popen(["sleep", "120"], user=user, group=user, extra_groups=[] if user else None)
    try:
        yield process.pid, pwd.getpwuid(user if user is not None else os.getuid()).pw_name
    finally:
        process.kill()
        process.wait()


def inventory(tmp_path: Path, pid: int) -> Path:
    """The DGX with a compute process on GPU 3 that tuxai did not start (its user left to /proc)."""
    path = tmp_path / "dgx-busy.yaml"
    path.write_text(DGX.read_text() + f"processes:\n  - {{gpu: 3, pid: {pid}, memory: 2GiB}}\n")
    return path


def wait_state(daemon: DaemonProcess, job_id: int, state: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while daemon.client.job(job_id).state.value != state:
        assert time.monotonic() < deadline, daemon.client.job(job_id)
        time.sleep(0.1)


def row(table: str, first: str) -> str:
    return next(line for line in table.splitlines() if line.split()[:1] == [first])


def test_a_gpu_busy_outside_tuxai_keeps_jobs_off_it_and_shows_who(tmp_path: Path, outsider: tuple[int, str]) -> None:
    pid, user = outsider
    daemon = DaemonProcess(tmp_path / "home", inventory(tmp_path, pid), extra=("--telemetry-period", "0.2")).start()
    try:
        seven = daemon.client.submit(shell("sleep 600", gpus=7, name="seven", grace="1s"))
        six = daemon.client.submit(shell("sleep 600", gpus=6, name="six", grace="1s"))
        wait_state(daemon, six, "running")
        assert 3 not in daemon.client.job(six).gpu_indices
        deadline = time.monotonic() + 10
        while "busy outside" not in daemon.client.job(seven).reason and time.monotonic() < deadline:
            time.sleep(0.1)
        job = daemon.client.job(seven)
        assert job.state.value == "pending"
        assert f"GPU 3 is busy outside tuxai (pid {pid} of {user})" in job.reason, job.reason
        gpus = cli(daemon.home, "gpus").stdout
        assert f"busy outside tuxai: pid {pid} of {user} (2.0 GiB)" in row(gpus, "3"), gpus
        assert [line.split()[0] for line in gpus.splitlines() if line.startswith("0/")] == [f"0/{i}" for i in range(7)]
        assert "MIG 7 × 1g.10gb, 7 free" in row(gpus, "0")
        listed = cli(daemon.home, "ls").stdout
        assert "busy outside tuxai" in row(listed, str(seven)), listed
        (shown,) = [g for g in daemon.client.gpus() if g.index == 3]
        assert [(p.pid, p.user, p.memory_bytes) for p in shown.outside] == [(pid, user, 2 * 1024**3)]
    finally:
        finish(daemon)


def test_allow_foreign_gpu_use_hands_such_a_gpu_out(tmp_path: Path, outsider: tuple[int, str]) -> None:
    pid, user = outsider
    extra = ("--telemetry-period", "0.2", "--allow-foreign-gpu-use")
    daemon = DaemonProcess(tmp_path / "home", inventory(tmp_path, pid), extra=extra).start()
    try:
        seven = daemon.client.submit(shell("sleep 600", gpus=7, name="seven", grace="1s"))
        wait_state(daemon, seven, "running")
        assert 3 in daemon.client.job(seven).gpu_indices
        gpus = cli(daemon.home, "gpus").stdout
        assert f"root job {seven} seven" in row(gpus, "3") and f"pid {pid} of {user}" in row(gpus, "3"), gpus
    finally:
        finish(daemon)


def test_mig_and_slices_in_words_and_a_whole_gpu_request_pointed_to_mig(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home", DGX, extra=("--telemetry-period", "0.2")).start()
    try:
        mig = daemon.client.submit(shell("sleep 600", gpus=2, mig="1g.10gb", name="mig", grace="1s"))
        part = daemon.client.submit(shell("sleep 600", gpus=1, gpu_share=0.25, name="part", grace="1s"))
        wait_state(daemon, mig, "running")
        wait_state(daemon, part, "running")
        listed = cli(daemon.home, "ls").stdout
        assert "GPU 0 · 2×MIG 1g.10gb" in row(listed, str(mig)), listed
        (index,) = daemon.client.job(part).gpu_indices
        assert f"GPU {index} · 25% slice" in row(listed, str(part)), listed
        gpus = cli(daemon.home, "gpus").stdout
        assert f"root job {mig} mig" in row(gpus, "0/0") and row(gpus, "0/2").split()[-1] == "free", gpus
        assert "MIG 7 × 1g.10gb, 5 free" in row(gpus, "0")
        assert f"root job {part} part (25% slice, 20.0 GiB), 75% free" in row(gpus, str(index))
        refused = cli(daemon.home, "submit", "-g", "8", "--", "true")
        assert refused.returncode != 0
        assert "GPU 0 is in MIG mode (7 × 1g.10gb) — ask for --mig 1g.10gb" in refused.stderr, refused.stderr
    finally:
        finish(daemon)


def test_a_process_on_one_mig_instance_keeps_only_that_instance_off_limits(tmp_path: Path) -> None:
    path = tmp_path / "dgx-mig-busy.yaml"
    path.write_text(DGX.read_text() + "processes:\n  - {gpu: 0, mig: 2, pid: 999999, user: erin}\n")
    daemon = DaemonProcess(tmp_path / "home", path, extra=("--telemetry-period", "0.2")).start()
    try:
        six = daemon.client.submit(shell("sleep 600", gpus=6, mig="1g.10gb", name="six", grace="1s"))
        wait_state(daemon, six, "running")
        gpus = cli(daemon.home, "gpus").stdout
        assert "busy outside tuxai: pid 999999 of erin" in row(gpus, "0/2") and f"job {six}" not in row(gpus, "0/2")
        assert "MIG 7 × 1g.10gb, 0 free" in row(gpus, "0"), gpus
        one = daemon.client.submit(shell("sleep 600", gpus=1, mig="1g.10gb", name="one", grace="1s"))
        deadline = time.monotonic() + 10
        while "busy outside" not in daemon.client.job(one).reason and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "GPU 0 MIG 2 is busy outside tuxai (pid 999999 of erin)" in daemon.client.job(one).reason
        assert daemon.client.job(one).state.value == "pending"
    finally:
        finish(daemon)
