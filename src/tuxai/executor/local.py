"""The ``local`` executor: shims on this machine, started through the launcher.

``Executor`` is the protocol every backend answers (``local`` today; Ray, Slurm later):
start an attempt from its run directory, ask it to stop, and say what became of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Protocol

from tuxai.executor import cgroups
from tuxai.executor.processes import kill_proven_group
from tuxai.executor.rundir import (
    SHIM_LOG,
    Status,
    claim,
    is_claimed,
    lock_if_free,
    read_status,
    write_stop,
)
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.job import StopReason


class Seen(StrEnum):
    """What an attempt looks like from outside."""

    EXITED = "exited"  # the shim recorded the outcome
    ALIVE = "alive"  # the shim holds its lock
    NOT_STARTED = "not-started"  # no shim ever claimed the attempt (it may still be on its way)
    LOST = "lost"  # a shim claimed it and died without recording an outcome
    VANISHED = "vanished"  # the run directory is gone: nothing says whether the attempt still runs


@dataclass(frozen=True)
class Observed:
    """An attempt's ``Seen`` and its last status."""

    seen: Seen
    status: Status | None


class Executor(Protocol):
    """Runs attempts described by run directories."""

    def start(self, run_dir: Path) -> None:
        """Start the attempt whose ``launch.json`` is in ``run_dir``."""

    def stop(self, run_dir: Path, reason: StopReason) -> None:
        """Ask the attempt to stop: SIGTERM, grace, SIGKILL."""

    def observe(self, run_dir: Path) -> Observed:
        """What became of the attempt."""

    def abandon(self, run_dir: Path) -> bool:
        """Make sure a not-started attempt never starts; True when it is now abandoned."""

    def kill_lost(self, status: Status | None, cgroup: CgroupPlan) -> None:
        """SIGKILL what is provably left of an attempt whose shim is gone: its group, its cgroup."""

    def close(self) -> None:
        """Release what the executor holds (running jobs are not touched)."""


class LocalExecutor:
    """Shims on this machine. The launcher (a fork server) starts them; ``python -m`` if it cannot."""

    def __init__(self, log_dir: Path, python: str = sys.executable) -> None:
        self.log_dir, self.python = log_dir, python
        self._launcher: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()

    def _ensure_launcher(self) -> subprocess.Popen[bytes]:
        if self._launcher is None or self._launcher.poll() is not None:
            if self._log is None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                self._log = open(self.log_dir / "launcher.log", "ab")  # noqa: SIM115 (open while we live)
            self._launcher = subprocess.Popen(
                [self.python, "-m", "tuxai.executor.launcher"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
            )
        return self._launcher

    def start(self, run_dir: Path) -> None:
        """Hand ``run_dir`` to the launcher; start a detached shim directly if the launcher is gone."""
        line = f"{run_dir}\n".encode()
        with self._lock:
            for _ in range(2):
                launcher = self._ensure_launcher()
                try:
                    if launcher.stdin is None:
                        raise BrokenPipeError
                    launcher.stdin.write(line)
                    launcher.stdin.flush()
                    return
                except (BrokenPipeError, OSError):
                    self._launcher = None
        with open(run_dir / SHIM_LOG, "ab") as log:
            subprocess.run(
                [self.python, "-m", "tuxai.executor.shim", "--detach", str(run_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                check=False,
            )

    def stop(self, run_dir: Path, reason: StopReason) -> None:
        """Write the stop request, then SIGTERM the shim if it is alive (it reads the request)."""
        write_stop(run_dir, reason)
        status = read_status(run_dir)
        if status is None or status.phase == "exited":
            return  # not started: the shim reads stop.json before it starts the job
        with lock_if_free(run_dir) as free:
            if free:
                return  # no shim holds the lock: the pid in status.json is not ours any more
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(status.shim_pid, signal.SIGTERM)

    def observe(self, run_dir: Path) -> Observed:
        """Exited (status written), alive (lock held), never started, lost, or vanished."""
        if not run_dir.is_dir():
            return Observed(Seen.VANISHED, None)
        status = read_status(run_dir)
        if status is not None and status.phase == "exited":
            return Observed(Seen.EXITED, status)
        with lock_if_free(run_dir) as free:
            if not free:
                return Observed(Seen.ALIVE, status)
            if not is_claimed(run_dir):
                return Observed(Seen.NOT_STARTED, status)
            status = read_status(run_dir)  # it may have exited between the two reads
            if status is not None and status.phase == "exited":
                return Observed(Seen.EXITED, status)
            return Observed(Seen.LOST, status)

    def abandon(self, run_dir: Path) -> bool:
        """Claim a never-started attempt so that a late shim gives it up."""
        if not run_dir.is_dir():
            return True
        with lock_if_free(run_dir) as free:
            return bool(free) and claim(run_dir)

    def kill_lost(self, status: Status | None, cgroup: CgroupPlan) -> None:
        """SIGKILL what is provably left of a lost attempt: its cgroup, and its process group
        only when the leader is the one recorded (same boot, same start time — never a pid
        that now belongs to somebody else)."""
        if cgroup:
            cgroups.kill(cgroup)
        if status is not None:
            kill_proven_group(status.pgid, status.boot_id, status.start_ticks)

    def close(self) -> None:
        """Close the launcher's stdin: it exits; the shims it started go on."""
        with self._lock:
            if self._launcher is not None and self._launcher.stdin is not None:
                with contextlib.suppress(OSError):
                    self._launcher.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._launcher.wait(timeout=5)
            if self._log is not None:
                self._log.close()
                self._log = None
