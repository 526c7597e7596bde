"""A real daemon process for the tests: start it, talk to it with the SDK, kill it, clean up.

Jobs outlive the daemon by design, so ``cleanup`` kills what is left of every attempt's
process group (from its ``status.json``) before the temporary home goes away.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuxai.api.client import Client
from tuxai.errors import DaemonError
from tuxai.model.wire import Job, JobDetail

REPO = Path(__file__).parent.parent
TWO_GPUS = REPO / "examples" / "inventories" / "two-gpu-box.yaml"


class DaemonProcess:
    """``python -m tuxai.api.server`` on a home of its own."""

    def __init__(self, home: Path, inventory: Path = TWO_GPUS, extra: tuple[str, ...] = ()) -> None:
        self.home, self.inventory = home, inventory
        # Any free port for Prometheus: several test daemons run at once.
        self.extra = extra if "--metrics-addr" in extra else ("--metrics-addr", "127.0.0.1:0", *extra)
        self.process: subprocess.Popen[bytes] | None = None
        self.client = Client.for_home(home, timeout_s=30)

    def start(self, timeout_s: float = 30.0) -> DaemonProcess:
        """Start and wait until the API answers."""
        argv = [sys.executable, "-m", "tuxai.api.server", "--home", str(self.home), "--inventory", str(self.inventory)]
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "daemon.log", "ab") as log:
            self.process = subprocess.Popen([*argv, *self.extra], stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.home / "daemon.log").read_text())
            with contextlib.suppress(DaemonError):
                self.client.health()
                return self
            time.sleep(0.02)
        raise RuntimeError("daemon did not answer: " + (self.home / "daemon.log").read_text())

    def kill9(self) -> None:
        """SIGKILL the daemon (and its launcher, which is in its process group)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop it the polite way; SIGKILL if that does not work."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(DaemonError):
            self.client.shutdown()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill9()

    def wait_all(self, ids: list[int], timeout_s: float = 60.0) -> dict[int, Job]:
        """Every job in ``ids`` once all have ended (the client's own jobs: ``Job``s)."""
        deadline = time.monotonic() + timeout_s
        while True:
            jobs = {j.id: j for j in self.client.jobs() if j.id in ids and isinstance(j, Job)}
            if len(jobs) == len(ids) and all(j.state.terminal for j in jobs.values()):
                return jobs
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs not done after {timeout_s} s: {[(i, j.state) for i, j in jobs.items()]}")
            time.sleep(0.05)

    def job(self, job_id: int) -> JobDetail:
        """One of the client's own jobs, in full."""
        job = self.client.job(job_id)
        assert isinstance(job, JobDetail), job
        return job

    def log(self, job_id: int) -> str:
        """The job's output, read from its log file."""
        return (self.home / "jobs" / str(job_id) / "output.log").read_text()


def kill_leftovers(home: Path) -> None:
    """SIGKILL every job process group and shim recorded under ``home``."""
    for status in home.glob("jobs/*/run-*/status.json"):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(status.read_text())
            for key, kill in (("pgid", os.killpg), ("shim_pid", os.kill)):
                if data.get(key) and data.get("phase") != "exited":
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(int(data[key]), signal.SIGKILL)


def finish(process: DaemonProcess) -> None:
    """Stop the daemon, kill what its jobs left running, close the client."""
    process.stop()
    kill_leftovers(process.home)
    process.client.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A started daemon on the simulated 2-GPU box; stopped and cleaned up afterwards."""
    process = DaemonProcess(tmp_path / "home").start()
    try:
        yield process
    finally:
        finish(process)


def shell(script: str, **fields: object) -> dict[str, object]:
    """A job spec that runs ``script`` with ``sh -c``."""
    return {"command": ["sh", "-c", script], **fields}
