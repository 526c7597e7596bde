"""Which cgroups this process may create for jobs: v2, else v1 (memory + cpu + pids), else none, and why.

Parsers are pure (``parse_mountinfo``, ``parse_proc_cgroup``); ``detect_cgroups`` reads
``/proc/self/mountinfo`` and ``/proc/self/cgroup`` and tries to create the parent group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PARENT = "tuxai"


@dataclass(frozen=True)
class CgroupSupport:
    """``version`` 2 or 1 with the parent directory per controller (``unified`` for v2); 0 with ``problem``."""

    version: int
    parents: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    device_rules: bool = False  # v1 ``devices`` controller writable (v2 needs eBPF: not done)


def parse_mountinfo(text: str) -> list[tuple[str, str, set[str]]]:
    """``/proc/self/mountinfo`` → (mount point, fs type, super options) for cgroup mounts.

    >>> parse_mountinfo("32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu")
    [('/sys/fs/cgroup/cpu', 'cgroup', {'rw', 'cpu'})]
    """
    mounts = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        if not sep:
            continue
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append((fields[4], tail[0], set(tail[2].split(","))))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` → controller → path (``""`` for the v2 hierarchy).

    >>> parse_proc_cgroup("4:memory:/a\\n0::/b")
    {'memory': '/a', '': '/b'}
    """
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller.removeprefix("name=")] = parts[2]
    return paths


def _writable_parent(directory: Path) -> str:
    """Create ``directory`` (the tuxai parent) and a probe child; '' on success, else why not."""
    try:
        directory.mkdir(exist_ok=True)
        probe = directory / f"probe-{os.getpid()}"
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError as exc:
        return f"{directory}: {exc.strerror}"
    return ""


def _v2(mount: str, own: str) -> CgroupSupport | None:
    base = Path(mount) / own.lstrip("/")
    try:
        controllers = (Path(mount) / "cgroup.controllers").read_text().split()
    except OSError:
        return None
    if "memory" not in controllers:
        return None
    parent = base / PARENT
    problem = _writable_parent(parent)
    if not problem:
        try:
            # Controllers reach job groups only when every level enables them.
            wanted = " ".join(f"+{c}" for c in ("memory", "cpu", "pids") if c in controllers)
            for level in (base, parent):
                (level / "cgroup.subtree_control").write_text(wanted)
        except OSError as exc:
            problem = f"cannot enable memory and cpu under {base} ({exc.strerror}: delegate it, systemd Delegate=yes)"
    if problem:
        return CgroupSupport(0, problem=f"cgroup v2: {problem}")
    return CgroupSupport(2, {"unified": str(parent)})


def detect_cgroups(mountinfo: str | None = None, proc_cgroup: str | None = None) -> CgroupSupport:
    """What this process may do with cgroups, trying v2 first, then v1 memory + cpu."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
        proc_cgroup = Path("/proc/self/cgroup").read_text() if proc_cgroup is None else proc_cgroup
    except OSError as exc:
        return CgroupSupport(0, problem=f"cannot read /proc/self: {exc.strerror}")
    mounts = parse_mountinfo(mountinfo)
    own = parse_proc_cgroup(proc_cgroup)
    problems = []
    for point, kind, _ in mounts:
        if kind == "cgroup2":
            v2 = _v2(point, own.get("", "/"))
            if v2 is not None and v2.version:
                return v2
            if v2 is not None:
                problems.append(v2.problem)
    parents: dict[str, str] = {}
    for controller in ("memory", "cpu", "devices", "pids"):
        mount = next((p for p, kind, opts in mounts if kind == "cgroup" and controller in opts), None)
        if mount is None:
            continue
        parent = Path(mount) / own.get(controller, "/").lstrip("/") / PARENT
        problem = _writable_parent(parent)
        if problem:
            problems.append(f"cgroup v1 {controller}: {problem}")
        else:
            parents[controller] = str(parent)
    if "memory" in parents:
        devices = parents.pop("devices", None)
        support = CgroupSupport(1, parents, device_rules=devices is not None)
        return support if devices is None else CgroupSupport(1, {**parents, "devices": devices}, device_rules=True)
    if not mounts:
        problems.append("no cgroup file system is mounted")
    return CgroupSupport(0, problem="; ".join(problems) or "no writable memory controller")
