"""A job's CPU time, memory and I/O from its process group in ``/proc`` (no cgroup needed).

``parse_stat(text)`` is pure; ``group_usage(root, pgid)`` walks ``/proc`` once.
"""

from __future__ import annotations

import os
from pathlib import Path

from tuxai.model.cgroup import CgroupPlan

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def parse_stat(text: str) -> tuple[int, float, int]:
    """``/proc/PID/stat`` → (process group, CPU seconds incl. waited-for children, RSS bytes).

    >>> parse_stat("42 (sh) S 1 42 42 0 -1 0 0 0 0 0 150 50 10 0 20 0 1 0 1 1000 25 0")[:2]
    (42, 2.1)
    """
    fields = text[text.rindex(")") + 2 :].split()
    pgrp = int(fields[2])
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    rss_pages = int(fields[21])
    return pgrp, (utime + stime + cutime + cstime) / TICKS, rss_pages * PAGE


def parse_session(text: str) -> int:
    """``/proc/PID/stat`` → the session id.

    >>> parse_session("42 (sh) S 1 43 40 0 -1 0 0 0 0 0 150 50 10 0 20 0 1 0 1 1000 25 0")
    40
    """
    return int(text[text.rindex(")") + 2 :].split()[3])


def parse_io(text: str) -> tuple[int, int]:
    """``/proc/PID/io`` → (read_bytes, write_bytes)."""
    values = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return int(values.get("read_bytes", 0)), int(values.get("write_bytes", 0))


def group_usage(pgids: set[int], proc: Path = Path("/proc")) -> dict[int, tuple[float, int, int, int, frozenset[int]]]:
    """For each process group: (CPU seconds, RSS bytes, read bytes, written bytes, pids), in one pass.

    A job that leads its own session (an interactive one, on its terminal: its pgid is its
    session's id) owns every process group of that session: what its shell runs is the job's.
    """
    found: dict[int, list[float]] = {}
    members: dict[int, set[int]] = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat") as handle:
                text = handle.read()
            pgrp, cpu, rss = parse_stat(text)
            if pgrp not in pgids:
                pgrp = parse_session(text)
        except (OSError, ValueError, IndexError):
            continue
        if pgrp not in pgids:
            continue
        total = found.setdefault(pgrp, [0.0, 0, 0, 0])
        total[0] += cpu
        total[1] += rss
        try:
            with open(f"{entry.path}/io") as handle:
                read, written = parse_io(handle.read())
            total[2] += read
            total[3] += written
        except (OSError, ValueError):
            pass
        members.setdefault(pgrp, set()).add(int(entry.name))
    return {
        g: (t[0], int(t[1]), int(t[2]), int(t[3]), frozenset(members.get(g, set()))) for g, t in found.items()
    }


def host_cpu_seconds(proc: Path = Path("/proc")) -> float:
    """Busy CPU seconds of the whole host since boot (``/proc/stat``: all but idle and iowait)."""
    with open(proc / "stat") as handle:
        fields = handle.readline().split()[1:]
    values = [int(v) for v in fields[:8]]
    return (sum(values) - values[3] - values[4]) / TICKS


def _first_number(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cgroup_usage(cgroup: CgroupPlan) -> tuple[float | None, int | None]:
    """(CPU seconds, memory bytes) of a job's cgroup; None for what the groups do not count
    (v1 without cpuacct: CPU from the process group; v1 without a memory group: the same)."""
    dirs = {c: Path(p) for c, p in cgroup.dirs.items()}
    if cgroup.version == 2 and "unified" in dirs:
        usage = None
        try:
            for line in (dirs["unified"] / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    usage = int(line.split()[1]) / 1e6
        except (OSError, ValueError):
            usage = None
        return usage, _first_number(dirs["unified"] / "memory.current")
    cpu_ns = _first_number(dirs["cpu"] / "cpuacct.usage") if "cpu" in dirs else None  # cpu,cpuacct co-mounted
    memory = _first_number(dirs["memory"] / "memory.usage_in_bytes") if "memory" in dirs else None
    return (None if cpu_ns is None else cpu_ns / 1e9), memory
