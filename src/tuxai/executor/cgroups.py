"""One job's cgroup: create with limits, attach the job, read what it used, kill and remove.

The daemon decides the directories (``plan``); the shim does the rest. v1 keeps one
directory per controller, v2 one directory. Device rules are written on v1 only (v2 needs
an eBPF program). Every job gets at least a ``pids`` group where one can be made (about a
tenth of a millisecond here): it caps the job's tasks (a fork bomb stays in it) and knows
every process of the job, also one that left its process group with ``setsid``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tuxai.executor import systemd
from tuxai.model.cgroup import CgroupPlan

CPU_PERIOD_US = 100_000
NVIDIA_MAJOR = 195


@dataclass(frozen=True)
class Limits:
    """What a job's groups enforce; 0 means no limit."""

    memory_bytes: int = 0
    cpus: int = 0  # CPUs' worth of time per period
    pids_max: int = 0  # tasks: processes and threads
    cpu_set: tuple[int, ...] = ()  # the CPUs the group may run on (v2 cpuset, where enabled)


@dataclass(frozen=True)
class CgroupStats:
    """What the job used, as the cgroup counted it (None where it does not count)."""

    oom_killed: bool = False
    max_memory_bytes: int | None = None
    cpu_s: float | None = None


def plan(version: int, parents: Mapping[str, str], name: str) -> CgroupPlan:
    """The directories of job group ``name`` under each parent (what ``launch.json`` carries)."""
    if version == 0:
        return CgroupPlan()
    return CgroupPlan(version, {c: str(Path(p) / name) for c, p in parents.items()})


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def create(cgroup: CgroupPlan, limits: Limits, devices: list[str] | None = None) -> None:
    """Make the job's groups and set memory (no swap), CPU quota, task cap and device rules.

    Raises:
        OSError: a group could not be made or a limit set.
    """
    if cgroup.systemd is not None:
        return  # systemd makes the scope and its slice when systemd-run starts the job
    memory_bytes, cpus = limits.memory_bytes, limits.cpus
    dirs = {c: Path(p) for c, p in cgroup.dirs.items()}
    for directory in dirs.values():
        directory.mkdir(exist_ok=True)
    pids_dir = dirs.get("unified" if cgroup.version == 2 else "pids")
    if limits.pids_max and pids_dir is not None and (pids_dir / "pids.max").exists():
        _write(pids_dir / "pids.max", str(limits.pids_max))
    if cgroup.version == 2:
        unified = dirs["unified"]
        if memory_bytes:
            _write(unified / "memory.max", str(memory_bytes))
            with contextlib.suppress(OSError):
                _write(unified / "memory.swap.max", "0")
        if cpus:
            _write(unified / "cpu.max", f"{cpus * CPU_PERIOD_US} {CPU_PERIOD_US}")
        if limits.cpu_set and (unified / "cpuset.cpus").exists():
            _write(unified / "cpuset.cpus", ",".join(str(c) for c in limits.cpu_set))
        return
    if memory_bytes and "memory" in dirs:
        _write(dirs["memory"] / "memory.limit_in_bytes", str(memory_bytes))
        with contextlib.suppress(OSError):  # only with swap accounting
            _write(dirs["memory"] / "memory.memsw.limit_in_bytes", str(memory_bytes))
    if cpus and "cpu" in dirs:
        _write(dirs["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
        _write(dirs["cpu"] / "cpu.cfs_quota_us", str(cpus * CPU_PERIOD_US))
    if devices is not None and "devices" in dirs:
        _write(dirs["devices"] / "devices.deny", f"c {NVIDIA_MAJOR}:* rwm")
        for rule in devices:
            _write(dirs["devices"] / "devices.allow", rule)


def nvidia_device_rules(minors: list[int]) -> list[str]:
    """v1 ``devices.allow`` lines for the allocated ``/dev/nvidiaN`` plus the control devices.

    >>> nvidia_device_rules([2])
    ['c 195:2 rwm', 'c 195:255 rwm', 'c 195:254 rwm']
    """
    return [f"c {NVIDIA_MAJOR}:{m} rwm" for m in minors] + [f"c {NVIDIA_MAJOR}:255 rwm", f"c {NVIDIA_MAJOR}:254 rwm"]


def attach(cgroup: CgroupPlan, pid: int) -> None:
    """Move ``pid`` into every group of the job (called in the child before ``exec``)."""
    if cgroup.systemd is not None:
        return  # systemd-run puts the job in its scope
    for directory in cgroup.dirs.values():
        _write(Path(directory) / "cgroup.procs", str(pid))


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _keyed(path: Path) -> dict[str, int]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            values[parts[0]] = int(parts[1])
    return values


def stats(cgroup: CgroupPlan) -> CgroupStats:
    """OOM kills, peak memory and CPU time of the job's groups."""
    dirs = {c: Path(p) for c, p in cgroup.dirs.items()}
    if cgroup.version == 2:
        unified = dirs["unified"]
        usage = _keyed(unified / "cpu.stat").get("usage_usec")
        return CgroupStats(
            oom_killed=_keyed(unified / "memory.events").get("oom_kill", 0) > 0,
            max_memory_bytes=_number(unified / "memory.peak"),
            cpu_s=None if usage is None else usage / 1e6,
        )
    if "memory" not in dirs:
        return CgroupStats()
    memory = dirs["memory"]
    return CgroupStats(
        oom_killed=_keyed(memory / "memory.oom_control").get("oom_kill", 0) > 0,
        max_memory_bytes=_number(memory / "memory.max_usage_in_bytes"),
    )


def watch_oom(cgroup: CgroupPlan) -> int | None:
    """An eventfd the kernel counts the job's OOMs on (v1), or None where there is none to watch.

    v1 counts an OOM kill (``memory.oom_control``) in the victim's own group only, and a
    container's group (under the job's) is gone when the job's outcome is read; the job's
    own group's OOM notification fires for an OOM under its limit wherever the victim was.
    """
    memory = cgroup.dirs.get("memory") if cgroup.version == 1 else None
    if memory is None:
        return None
    try:
        events = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        control = os.open(Path(memory) / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _write(Path(memory) / "cgroup.event_control", f"{events} {control}")
        finally:
            os.close(control)
    except OSError:
        return None
    return events


def oom_seen(events: int | None) -> bool:
    """The job's group went out of memory since ``watch_oom`` (the eventfd is closed)."""
    if events is None:
        return False
    try:
        return os.eventfd_read(events) > 0
    except BlockingIOError:
        return False
    finally:
        os.close(events)


def pids(cgroup: CgroupPlan) -> list[int]:
    """Processes still in the job's groups (and their child groups: a systemd slice has its scope)."""
    found: set[int] = set()
    for directory in cgroup.dirs.values():
        for root, _, _ in os.walk(directory):
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (Path(root) / "cgroup.procs").read_text().split())
    return sorted(found)


def kill(cgroup: CgroupPlan) -> None:
    """SIGKILL every process in the job's groups, again until none is left (a forking job races)."""
    for directory in cgroup.dirs.values():
        with contextlib.suppress(OSError):  # v2 on Linux ≥ 5.14: one write kills the whole group
            _write(Path(directory) / "cgroup.kill", "1")
    for _ in range(100):
        left = pids(cgroup)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def kill_and_remove(cgroup: CgroupPlan) -> None:
    """SIGKILL whatever is left in the groups, then remove them (best effort: the job already ended)."""
    kill(cgroup)
    if cgroup.systemd is not None:
        systemd.stop(cgroup)
        return
    for directory in cgroup.dirs.values():
        for _ in range(100):  # the killed processes leave the group within milliseconds
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)
