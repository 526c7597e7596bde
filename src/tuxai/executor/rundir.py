"""The run directory of one attempt: how the local executor and the shim talk without talking.

The local executor's handle for an attempt (``executor.attempt``) is this directory's path.

    <home>/jobs/<id>/run-<attempt>/      (0700, the daemon's; the job's own files: executor.files)
        launch.json   the daemon's ``Launch``, written by ``prepare`` before the start: everything the shim needs
        shim.lock     flock-ed by the shim for its whole life (alive ⇔ locked)
        claimed       created once (O_EXCL) by whoever owns the attempt: the shim before
                      it starts the job, or ``abandon`` for the daemon when an attempt
                      never started — so an attempt runs at most once
        status.json   written atomically by the shim: starting → running → exited
        stop.json     written by ``stop`` to ask for a stop (cancel, preempt), then SIGTERM
        shim.log      the shim's own errors
        reserve       a few KiB the shim frees when the disk is full, to record the outcome

Every write is a temp file (0600) renamed into place: a reader sees the old or the new file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from tuxai.model.cgroup import CgroupPlan
from tuxai.model.container import Container
from tuxai.model.job import StopReason

LAUNCH = "launch.json"
LOCK = "shim.lock"
CLAIMED = "claimed"
STATUS = "status.json"
STOP = "stop.json"
SHIM_LOG = "shim.log"
RESERVE = "reserve"
RESERVE_BYTES = 16384
# In the job's directory (``Launch.job_dir``), owned by the job's user:
OUTPUT = "output.log"


def rank_output(rank: int) -> str:
    """The log of a multi-node job's node ``rank`` in the job's directory: rank 0's is the job's own.

    >>> rank_output(0), rank_output(2)
    ('output.log', 'output.rank2.log')
    """
    return f"output.rank{rank}.log" if rank else OUTPUT


CHECKPOINT = "checkpoint"
ENDPOINT = "endpoint"


@dataclass(frozen=True)
class Launch:
    """What the shim runs and how: written by the daemon, read by the shim."""

    job_id: int
    attempt: int
    command: tuple[str, ...]
    env: dict[str, str]
    cwd: str
    log_path: str
    job_dir: str = ""  # the job's directory: the shim makes checkpoint/ and endpoint here for the user
    cpus: tuple[int, ...] = ()  # CPU affinity (real CPU numbers); empty: leave as is
    memory_limit_bytes: int = 0  # 0: none
    cpu_quota: int = 0  # CPUs' worth of time per period; 0: none
    time_limit_s: float | None = None
    grace_s: float = 60.0
    user: tuple[int, int, tuple[int, ...]] | None = None  # uid, gid, groups to run as (daemon is root)
    cgroup: CgroupPlan = field(default_factory=CgroupPlan)  # the job's groups (empty: none)
    devices: tuple[str, ...] = ()  # v1 devices.allow rules; empty: no device fencing
    notify_socket: str = ""
    pids_max: int = 0  # tasks (processes and threads) the job's cgroup allows; 0: no limit
    session: str = ""  # interactive (tuxai run): "pty" or "pipe", served by executor.session; "": none
    container: Container | None = None  # run in an OCI image through podman (executor.podman); None: bare
    env_lock: str = ""  # a requirements/lockfile's text: the shim builds or reuses its env (executor.node_env)
    env_cache: str = ""  # where the node keeps built envs (set by the node's launcher, executor.ray_node)
    node: str = ""  # the cluster node this rank runs on (its address); "": this machine
    note: str = ""  # a line the shim writes first to the job's log (a node's word on a limit it cannot apply)


class Phase(StrEnum):
    """Where the shim is in an attempt (status.json's ``phase``)."""

    STARTING = "starting"  # it claimed the attempt and is making the job's groups
    RUNNING = "running"  # the job's process runs (pid, pgid known)
    EXITED = "exited"  # the outcome is recorded: nothing more will change


@dataclass(frozen=True)
class Status:
    """What the shim reports, in one ``Phase``."""

    phase: Phase
    shim_pid: int
    pid: int | None = None
    pgid: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    timed_out: bool = False
    stop_reason: StopReason | None = None  # the stop the shim acted on
    wall_s: float | None = None
    cpu_s: float | None = None
    max_rss_bytes: int | None = None
    error: str = ""  # the job could not be started: why
    boot_id: str = ""  # the kernel's boot id when the job started: a pid means nothing after a reboot
    start_ticks: int | None = None  # the job leader's start time (/proc/<pid>/stat field 22)
    node_lost: bool = False  # a gang's node was lost (``error`` names it): the job may run again (its retries)
    rank_exits: tuple[str, ...] = ()  # a gang's: each rank's end in words, rank order (``executor.gang_status``)


def write_atomic(path: Path, data: dict[str, Any], durable: bool = False) -> None:
    """Write JSON to ``path`` through a temp file and a rename (``durable``: fsync first)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_launch(run_dir: Path, launch: Launch) -> None:
    """Create the run directory (0700) and its ``launch.json``.

    Raises:
        FileExistsError: the run directory exists: an attempt directory is never reused.
    """
    run_dir.mkdir(mode=0o700)
    # No fsync: after a power cut the shim is gone too, and an attempt without launch.json is
    # one that never started (the daemon gives it up and runs the job again).
    container = launch.container.to_dict() if launch.container else None
    write_atomic(run_dir / LAUNCH, {**asdict(launch), "cgroup": launch.cgroup.to_dict(), "container": container})


def read_launch(run_dir: Path) -> Launch:
    """``launch.json`` → ``Launch`` (``ValueError`` when missing or damaged)."""
    data = _read(run_dir / LAUNCH)
    if data is None:
        raise ValueError(f"{run_dir / LAUNCH} is missing or damaged")
    user = data.get("user")
    return Launch(
        **{
            **data,
            "command": tuple(data["command"]),
            "cpus": tuple(data.get("cpus", ())),
            "devices": tuple(data.get("devices", ())),
            "user": None if user is None else (int(user[0]), int(user[1]), tuple(user[2])),
            "cgroup": CgroupPlan.from_dict(data.get("cgroup")),
            "container": Container.from_dict(data.get("container")),
        }
    )


def write_status(run_dir: Path, status: Status, durable: bool = False) -> None:
    """Replace ``status.json``; on a full disk, free the reserve and try once more.

    Raises:
        OSError: it could not be written even so.
    """
    try:
        write_atomic(run_dir / STATUS, asdict(status), durable=durable)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not (run_dir / RESERVE).exists():
            raise
        os.unlink(run_dir / RESERVE)
        write_atomic(run_dir / STATUS, asdict(status), durable=durable)


def make_reserve(run_dir: Path) -> None:
    """Set aside room for the final status (security issue D8: it was lost on a full disk)."""
    with contextlib.suppress(OSError):
        fd = os.open(run_dir / RESERVE, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)


def read_status(run_dir: Path) -> Status | None:
    """``status.json`` → ``Status``, or ``None`` before the shim wrote one."""
    data = _read(run_dir / STATUS)
    if data is None:
        return None
    try:
        phase, stop = Phase(str(data.get("phase"))), StopReason.parse(data.get("stop_reason"))
        ranks = tuple(str(w) for w in data.get("rank_exits") or ())  # JSON's list, the dataclass's tuple
        return Status(**{**data, "phase": phase, "stop_reason": stop, "rank_exits": ranks})
    except (TypeError, ValueError):
        return None


def write_stop(run_dir: Path, reason: StopReason) -> None:
    """Ask the shim to stop the job (it reads this when it gets SIGTERM or before it starts)."""
    write_atomic(run_dir / STOP, {"reason": reason})


def read_stop(run_dir: Path) -> StopReason | None:
    """The stop reason the daemon wrote, if any."""
    data = _read(run_dir / STOP)
    return None if data is None else StopReason.parse(data.get("reason", "cancel"))


def claim(run_dir: Path) -> bool:
    """Create ``claimed`` if nobody did; True for the one caller that did."""
    try:
        fd = os.open(run_dir / CLAIMED, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def is_claimed(run_dir: Path) -> bool:
    """Somebody owns the attempt."""
    return (run_dir / CLAIMED).exists()


@contextlib.contextmanager
def lock_if_free(run_dir: Path) -> Any:
    """Yield True holding the shim lock when no shim holds it, else yield False."""
    try:
        fd = os.open(run_dir / LOCK, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except FileNotFoundError:
        yield True  # no run directory: nothing alive there
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
