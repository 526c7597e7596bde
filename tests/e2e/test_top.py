"""`tuxai top` as a person sees it: in tmux, on a simulated 8-GPU box with jobs running; `q` quits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.daemon_helpers import DaemonProcess, finish, shell

DGX = REPO / "examples" / "inventories" / "dgx-a100.yaml"


def tmux(socket: Path, *args: str) -> str:
    return subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True, text=True, check=True).stdout


def test_top_in_tmux_shows_each_job_with_user_and_gpus_and_q_quits(tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is not installed: `make test` installs Debian's package"
    daemon = DaemonProcess(tmp_path / "home", DGX, extra=("--telemetry-period", "0.2")).start()
    socket = tmp_path / "tmux.sock"
    try:
        busy = f"{sys.executable} -c 'while True: pass'"
        train = daemon.client.submit(shell(busy, gpus=2, name="train-llm", grace="1s"))
        idle = daemon.client.submit(shell("sleep 60", gpus=1, name="notebook", grace="1s"))
        command = f"{sys.executable} -m tuxai top --interval 0.3 --home {daemon.home}; echo TOP-EXITED-$?; sleep 30"
        env = f"env COLUMNS=160 LINES=40 PATH={os.environ['PATH']}"
        tmux(socket, "new-session", "-d", "-x", "160", "-y", "40", f"{env} sh -c '{command}'")
        screen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.5)
            screen = tmux(socket, "capture-pane", "-p")
            if "train-llm" in screen and "notebook" in screen and "100%" in screen:
                break
        jobs = {j.id: j for j in daemon.client.jobs()}
        assert "GPUs (simulated)" in screen, screen
        for job_id, name in ((train, "train-llm"), (idle, "notebook")):
            for index in jobs[job_id].gpu_indices:
                row = next(line for line in screen.splitlines() if line.split()[:1] == [str(index)] and "A100" in line)
                assert f"{job_id} root {name}" in row, screen
            queue_row = next(line for line in screen.splitlines() if line.split()[:3] == [str(job_id), "root", name])
            assert "running" in queue_row
        assert "100%" in screen  # the busy job's GPUs
        tmux(socket, "send-keys", "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "TOP-EXITED-0" not in screen:
            time.sleep(0.2)
            screen = tmux(socket, "capture-pane", "-p")
        assert "TOP-EXITED-0" in screen, screen
        assert "tuxai top —" not in screen  # the alternate screen is gone: the terminal is back
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)
        finish(daemon)
