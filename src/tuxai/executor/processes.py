"""Processes as ``/proc`` shows them: the boot, a process's start time, its descendants.

A pid is a number the kernel hands out again: after a reboot, or once the process is gone,
the same number is somebody else. Before tuxai signals a process group it recorded, it
proves the group is still the job's: same boot (``/proc/sys/kernel/random/boot_id``) and
same start time of the leader (field 22 of ``/proc/<pid>/stat``) — security issue D13.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot's id ('' when the kernel does not say)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def parse_stat(text: str) -> tuple[int, int] | None:
    """``/proc/<pid>/stat`` → (parent pid, start time in clock ticks).

    The command name (field 2) may hold spaces and parentheses: fields are counted after
    its last ``)``.

    >>> parse_stat("42 (a) b) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0")
    (7, 12345)
    """
    _, _, rest = text.rpartition(")")
    fields = rest.split()
    if len(fields) < 20 or not fields[1].isdigit() or not fields[19].isdigit():
        return None
    return int(fields[1]), int(fields[19])


def _stat(pid: int) -> tuple[int, int] | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks after boot; None when it is gone."""
    found = _stat(pid)
    return None if found is None else found[1]


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, …), by one scan of ``/proc``."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        found = _stat(int(entry.name))
        if found is not None:
            parents.setdefault(found[0], []).append(int(entry.name))
    found_all: list[int] = []
    frontier = [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found_all.extend(children)
        frontier.extend(children)
    return found_all


def kill_proven_group(pgid: int | None, recorded_boot: str, recorded_ticks: int | None) -> bool:
    """SIGKILL process group ``pgid`` only if its leader is provably the one recorded.

    Proof: the same boot, and a live leader with the recorded start time. Without a record
    (an old status file) or with any doubt, nothing is signalled. True when it signalled.
    """
    if not pgid or not recorded_boot or recorded_ticks is None:
        return False
    if recorded_boot != boot_id() or start_ticks(pgid) != recorded_ticks:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
        return True
    return False
