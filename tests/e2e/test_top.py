"""`tuxai top` as a person sees it: in tmux at 80×24 and at 200×50, on a simulated DGX whose GPU 0 is
split into MIG instances, with a MIG job, a slice and whole GPUs running; keys sort, select,
cancel (the daemon's refusal shown in the view) and `q` quits. The test reads the pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.daemon_helpers import DaemonProcess, finish, shell
from tests.integration import test_daemon_security as security

base = security.base  # a directory every user may cross (pytest's tmp_path is private to root)

DGX = REPO / "examples" / "inventories" / "dgx-a100.yaml"
# Busy a third of the time: the simulated GPUs show it, and it leaves the machine's two cores to the other tests.
DUTY = r"import time\nwhile True:\n t = time.monotonic()\n while time.monotonic() - t < 0.02: pass\n time.sleep(0.04)"
BUSY = f"""{sys.executable} -c 'exec("{DUTY}")'"""


def tmux(socket: Path, *args: str) -> str:
    return subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True, text=True, check=True).stdout


@contextmanager
def top_in_tmux(tmp_path: Path, home: Path, columns: int, lines: int, as_nobody: bool = False) -> Iterator[Path]:
    """`tuxai top` in a detached tmux session of ``columns`` × ``lines`` (as uid 65534 with ``as_nobody``,
    under the system's Python with this checkout on its path); yields the tmux socket."""
    assert shutil.which("tmux"), "tmux is not installed: `make test` installs Debian's package"
    socket = tmp_path / f"tmux-{columns}x{lines}.sock"
    python = sys.executable
    if as_nobody:
        variables = f"PATH={security.NOBODY_BIN} PYTHONPATH={security.NOBODY_PATH} HOME=/nonexistent TERM=$TERM"
        python = f"setpriv --reuid 65534 --regid 65534 --clear-groups env -i {variables} {security.SYSTEM_PYTHON}"
    command = f"{python} -m tuxai top --interval 0.3 --home {home}; echo TOP-EXITED-$?; sleep 30"
    env = f"env COLUMNS={columns} LINES={lines} PATH={os.environ['PATH']}"
    tmux(socket, "new-session", "-d", "-x", str(columns), "-y", str(lines), f"{env} sh -c '{command}'")
    try:
        yield socket
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)


def wait_screen(socket: Path, ready: Callable[[str], bool], timeout_s: float = 30.0) -> str:
    """The pane once ``ready`` says so (the last capture, whatever it shows, after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux(socket, "capture-pane", "-p")
        if ready(screen):
            break
        time.sleep(0.3)
    return screen


def gpu_rows(screen: str, index: int) -> list[str]:
    """The lines that start with ``index``: the GPU's row first (the table is above the queue)."""
    return [line for line in screen.splitlines() if line.split()[:1] == [str(index)]]


def gpu_row(screen: str, index: int) -> str:
    return gpu_rows(screen, index)[0]


def test_top_at_80x24_and_200x50_shows_every_gpu_with_its_utilization_and_holder(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home", DGX, extra=("--telemetry-period", "0.2")).start()
    try:
        mig = daemon.client.submit(shell(BUSY, gpus=2, mig="1g.10gb", name="mig-train", grace="1s"))
        whole = daemon.client.submit(shell(BUSY, gpus=2, name="train-llm", grace="1s"))
        part = daemon.client.submit(shell("sleep 600", gpus=1, gpu_share=0.25, name="notebook", grace="1s"))
        deadline = time.monotonic() + 60  # all three start at the next tick (later on a loaded machine)
        while not all(j.state == "running" for j in daemon.client.jobs()) and time.monotonic() < deadline:
            time.sleep(0.1)
        jobs = {j.id: j for j in daemon.client.jobs()}
        assert all(j.state == "running" for j in jobs.values()), jobs
        holders = {i: f"{whole} root train-llm" for i in jobs[whole].gpu_indices}
        (sliced,) = jobs[part].gpu_indices
        holders[sliced] = f"{part} root notebook (25% slice)"
        holders[0] = f"MIG 5/7 free: {mig} root mig-train ×2"

        def settled(screen: str) -> bool:  # the busy job's GPUs show it busy (how busy: the machine's load)
            # The GPU table's rows only: a queue line starts with a job id, which may be a GPU's index too.
            rows = [row for i in jobs[whole].gpu_indices for row in gpu_rows(screen, i)[:1]]
            return len(rows) == 2 and all(row.split()[1] not in ("0%", "n/a") for row in rows)

        with top_in_tmux(tmp_path, daemon.home, 80, 24) as socket:
            screen = wait_screen(socket, settled)
            lines = screen.splitlines()
            assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), screen
            assert "GPUs (simulated)" in lines[0], screen
            for index in range(8):
                row = gpu_row(screen, index)
                assert row.split()[1].endswith("%") and row.split()[2].endswith("%"), screen  # utilization, memory
                assert holders.get(index, "free") in row, screen
            assert gpu_row(screen, jobs[whole].gpu_indices[0]).split()[1] != "0%", screen
            queue = next(line for line in lines if line.split()[:2] == [str(mig), "root"])
            assert "GPU 0 · 2×MIG 1g.10gb" in queue, screen
            assert "GPU 0 · " not in gpu_row(screen, 0) and "0,0" not in queue

            tmux(socket, "send-keys", "s")
            assert "sort: util" in wait_screen(socket, lambda s: "sort: util" in s)
            tmux(socket, "send-keys", "u")
            panel = wait_screen(socket, lambda s: "GPU-H" in s)
            assert any(line.split()[:1] == ["root"] for line in panel.splitlines()), panel
            tmux(socket, "send-keys", "u", "Down", "c")
            asked = wait_screen(socket, lambda s: f"cancel job {mig}?" in s)
            assert f"cancel job {mig}? y cancels it" in asked, asked
            tmux(socket, "send-keys", "y")
            wait_screen(socket, lambda s: f"job {mig}: " in s)
            deadline = time.monotonic() + 15
            while daemon.client.job(mig).state.value != "cancelled" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert daemon.client.job(mig).state.value == "cancelled"
            tmux(socket, "send-keys", "q")
            done = wait_screen(socket, lambda s: "TOP-EXITED-" in s, 10)
            assert "TOP-EXITED-0" in done and "tuxai top —" not in done, done  # the terminal is back

        again = daemon.client.submit(shell(BUSY, gpus=3, mig="1g.10gb", name="mig-two", grace="1s"))
        with top_in_tmux(tmp_path, daemon.home, 200, 50) as socket:
            screen = wait_screen(socket, lambda s: "mig-two" in s and settled(s))
            lines = screen.splitlines()
            assert len(lines) <= 50 and all(len(line) <= 200 for line in lines), screen
            for header in ("MODEL", "MEMORY", "TEMP", "POWER", "HELD BY"):
                assert header in lines[1], screen
            instances = [line for line in lines if line.split()[:1] and line.split()[0].startswith("0/")]
            assert len(instances) == 7, screen
            assert sum(f"{again} root mig-two" in line for line in instances) == 3, screen
            for index in range(1, 8):
                row = gpu_row(screen, index)
                assert "A100-SXM4-80GB" in row and row.split()[1].endswith("%"), screen
                assert holders.get(index, "free") in row, screen
            assert "MIG 4/7 free" in gpu_row(screen, 0)
    finally:
        finish(daemon)


def test_top_shows_the_daemons_refusal_of_a_cancel_and_goes_on(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home", DGX, extra=("--telemetry-period", "0.2")).start()
    try:
        short = daemon.client.submit(shell("sleep 3", gpus=1, name="short", grace="1s"))
        with top_in_tmux(tmp_path, daemon.home, 80, 24) as socket:
            wait_screen(socket, lambda s: "short" in s)
            tmux(socket, "send-keys", "Down", "c")
            wait_screen(socket, lambda s: f"cancel job {short}?" in s)
            deadline = time.monotonic() + 15
            while daemon.client.job(short).state.value != "succeeded" and time.monotonic() < deadline:
                time.sleep(0.1)
            tmux(socket, "send-keys", "y")
            screen = wait_screen(socket, lambda s: "not cancelled" in s)
            assert f"job {short} not cancelled: job {short} already ended (succeeded)" in screen, screen
            tmux(socket, "send-keys", "q")
            assert "TOP-EXITED-0" in wait_screen(socket, lambda s: "TOP-EXITED-" in s, 10)
    finally:
        finish(daemon)


def test_top_as_another_user_shows_the_refusal_to_cancel_roots_job(tmp_path: Path, base: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: the daemon runs as root and the user of top as nobody")
    daemon = DaemonProcess(base / "home", DGX, extra=("--telemetry-period", "0.2")).start()
    try:
        theirs = daemon.client.submit(shell("sleep 600", gpus=1, name="roots-job", grace="1s"))
        with top_in_tmux(tmp_path, daemon.home, 80, 24, as_nobody=True) as socket:
            seen = wait_screen(socket, lambda s: "roots-job" in s)
            assert f"{theirs} root roots-job" in seen, seen  # the queue is everyone's to see
            tmux(socket, "send-keys", "Down", "c")
            wait_screen(socket, lambda s: f"cancel job {theirs}?" in s)
            tmux(socket, "send-keys", "y")
            screen = wait_screen(socket, lambda s: "not cancelled" in s)
            assert f"job {theirs} not cancelled: job {theirs} belongs to root: you cannot cancel it" in screen, screen
            assert daemon.client.job(theirs).state.value == "running"
            assert "tuxai top —" in screen  # the view goes on
            tmux(socket, "send-keys", "q")
            assert "TOP-EXITED-0" in wait_screen(socket, lambda s: "TOP-EXITED-" in s, 10)
    finally:
        finish(daemon)
