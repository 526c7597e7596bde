"""The ``local`` executor: shims on this machine, started through the launcher.

It answers the seam every backend answers (``executor.attempt``: the contract a Ray, Slurm
or podman backend follows too). Here an attempt's handle is its run directory,
``<job dir>/run-<attempt>`` (``executor.rundir``: launch.json, the shim's lock, ``claimed``,
status.json, stop.json), made once and never reused; its groups are named by
``cgroup_name(home, job, attempt)``, so what is left of a lost attempt is found from the
handle alone, even when its directory is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Protocol

from tuxai.executor import cgroups, podman, systemd
from tuxai.executor.attempt import AttemptHandle, AttemptTaken, Executor, Observed, Processes, Seen
from tuxai.executor.processes import kill_proven_group
from tuxai.executor.rundir import (
    SHIM_LOG,
    Launch,
    Phase,
    claim,
    is_claimed,
    lock_if_free,
    read_launch,
    read_status,
    write_launch,
    write_stop,
)
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.job import StopReason

__all__ = ["CgroupHost", "Executor", "LocalExecutor", "Observed", "Seen", "cgroup_name", "every_group"]


class CgroupHost(Protocol):
    """Where this host puts job groups (``hardware.cgroups.CgroupSupport`` is one)."""

    @property
    def version(self) -> int:
        """2 or 1; 0: no cgroups."""

    @property
    def parents(self) -> dict[str, str]:
        """The parent directory per controller (``unified`` on v2)."""

    @property
    def systemd(self) -> bool:
        """Jobs get transient scopes from systemd."""

    @property
    def systemd_version(self) -> int:
        """systemd-run's version, on the systemd path."""


def cgroup_name(home: Path, job_id: int, attempt: int) -> str:
    """The job's group name, unique per home: two daemons on two homes never share a group (D12).

    >>> cgroup_name(Path("/var/lib/tuxai"), 12, 1)
    'tuxai-49d460aa-job-12-1'
    """
    tag = hashlib.sha256(str(home).encode()).hexdigest()[:8]
    return f"tuxai-{tag}-job-{job_id}-{attempt}"


def every_group(host: CgroupHost, name: str) -> CgroupPlan:
    """Every group an attempt named ``name`` may have on this host, whichever controllers it used."""
    if host.systemd:
        return systemd.plan(host.parents["unified"], name, (), host.systemd_version)
    return cgroups.plan(host.version, host.parents, name)


def attempt_of(run_dir: Path) -> tuple[int, int] | None:
    """``.../jobs/12.3/run-2`` → (12, 2): the job and attempt a local handle names; None if it names none.

    >>> attempt_of(Path("/var/lib/tuxai/jobs/12.3/run-2")), attempt_of(Path("/tmp/x"))
    ((12, 2), None)
    """
    job, _, _ = run_dir.parent.name.partition(".")
    number = run_dir.name.removeprefix("run-")
    if not (job.isdecimal() and number.isdecimal() and run_dir.name.startswith("run-")):
        return None
    return int(job), int(number)


class LocalExecutor:
    """Shims on this machine. The launcher (a fork server) starts them; ``python -m`` if it cannot."""

    def __init__(self, home: Path, host: CgroupHost | None = None, python: str = sys.executable) -> None:
        """``home``: the daemon's (its ``logs/`` holds the launcher's log; group names carry it);
        ``host``: where job groups go (None: no cgroups)."""
        self.home, self.host, self.python = home, host, python
        self.log_dir = home / "logs"
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

    def prepare(self, launch: Launch) -> AttemptHandle:
        """Make ``<job dir>/run-<attempt>`` (0700) with its ``launch.json``; its path is the handle.

        Raises:
            AttemptTaken: the directory exists (an attempt whose record a power cut erased).
            ValueError: the launch names no job directory.
        """
        if not launch.job_dir:
            raise ValueError(f"job {launch.job_id}: the launch names no job directory")
        run_dir = Path(launch.job_dir) / f"run-{launch.attempt}"
        try:
            write_launch(run_dir, launch)
        except FileExistsError as exc:
            raise AttemptTaken(f"{run_dir} exists: an attempt directory is never reused") from exc
        return AttemptHandle(str(run_dir))

    def start(self, handle: AttemptHandle) -> None:
        """Hand the run directory to the launcher; start a detached shim directly if the launcher is gone."""
        run_dir = Path(handle)
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

    def stop(self, handle: AttemptHandle, reason: StopReason) -> None:
        """Write the stop request, then SIGTERM the shim if it is alive (it reads the request)."""
        run_dir = Path(handle)
        write_stop(run_dir, reason)
        status = read_status(run_dir)
        if status is None or status.phase is Phase.EXITED:
            return  # not started: the shim reads stop.json before it starts the job
        with lock_if_free(run_dir) as free:
            if free:
                return  # no shim holds the lock: the pid in status.json is not ours any more
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(status.shim_pid, signal.SIGTERM)

    def observe(self, handle: AttemptHandle) -> Observed:
        """Exited (status written), alive (lock held), never started, lost, or vanished."""
        run_dir = Path(handle)
        if not run_dir.is_dir():
            return Observed(Seen.VANISHED, None)
        status = read_status(run_dir)
        if status is not None and status.phase is Phase.EXITED:
            return Observed(Seen.EXITED, status)
        with lock_if_free(run_dir) as free:
            if not free:
                return Observed(Seen.ALIVE, status)
            if not is_claimed(run_dir):
                return Observed(Seen.NOT_STARTED, status)
            status = read_status(run_dir)  # it may have exited between the two reads
            if status is not None and status.phase is Phase.EXITED:
                return Observed(Seen.EXITED, status)
            return Observed(Seen.LOST, status)

    def abandon(self, handle: AttemptHandle) -> bool:
        """Claim a never-started attempt so that a late shim gives it up."""
        run_dir = Path(handle)
        if not run_dir.is_dir():
            return True
        with lock_if_free(run_dir) as free:
            return bool(free) and claim(run_dir)

    def kill_lost(self, handle: AttemptHandle) -> None:
        """SIGKILL what is provably left of a lost attempt: every group its name may have (found
        from the handle, even with its directory gone), and its process group only when the
        leader is the one recorded (same boot, same start time — never a pid that now belongs
        to somebody else)."""
        run_dir = Path(handle)
        cgroup = self.groups(handle)
        if cgroup:
            cgroups.kill(cgroup)
        status = read_status(run_dir)
        if status is not None:
            kill_proven_group(status.pgid, status.boot_id, status.start_ticks)
        with contextlib.suppress(ValueError):  # a container job: what podman keeps of it (its record, its groups)
            launch = read_launch(run_dir)
            if launch.container is not None:
                podman.remove_container(run_dir)
                podman.remove_groups(launch.cgroup)

    def processes(self, handle: AttemptHandle) -> Processes | None:
        """The job's process group (from status.json, once the shim started it) and the groups it was launched with."""
        run_dir = Path(handle)
        status = read_status(run_dir)
        if status is None or not status.pgid:
            return None
        try:
            cgroup = read_launch(run_dir).cgroup
        except ValueError:
            cgroup = CgroupPlan()
        return Processes(status.pgid, cgroup)

    def groups(self, handle: AttemptHandle) -> CgroupPlan:
        """Every group the attempt may have (whichever controllers it used); empty without cgroups."""
        named = attempt_of(Path(handle))
        if self.host is None or not self.host.version or named is None:
            return CgroupPlan()
        return every_group(self.host, cgroup_name(self.home, *named))

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
