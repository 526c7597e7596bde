"""Which cgroups this process may create for jobs, by which path, and why not.

Three paths, tried in this order:

- ``systemd``: a pure cgroup v2 host whose PID 1 is systemd, and a root daemon: each job
  runs in a transient scope (``systemd-run --scope``) inside a slice of its own under
  ``tuxai.slice``; systemd sets memory, CPUs, tasks and — with its own BPF program —
  the device policy. What Ubuntu 22.04+, Debian 12 and RHEL 9 run.
- ``cgroupfs v2``: cgroup v2 without systemd (or a non-root daemon in a delegated group):
  tuxai writes the groups itself under ``<own group>/tuxai``, after moving itself into a
  leaf (``<own group>/tuxai-daemon``: v2 lets a group with processes enable no
  controllers for its children). No device fencing (that needs a BPF program).
- ``cgroupfs v1``: one directory per controller (memory, cpu, pids, devices).

Parsers are pure (``parse_mountinfo``, ``parse_proc_cgroup``); ``detect_cgroups`` reads
``/proc/self/mountinfo`` and ``/proc/self/cgroup`` and tries to create the parent group
(``prepare``: the daemon also moves itself into its leaf; the doctor only looks).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PARENT = "tuxai"
SLICE = "tuxai.slice"
LEAF = "tuxai-daemon"
SYSTEMD_RUNTIME = Path("/run/systemd/system")  # exists when systemd is PID 1 (sd_booted)


@dataclass(frozen=True)
class CgroupSupport:
    """``version`` 2 or 1 with the parent directory per controller (``unified`` for v2); 0 with ``problem``."""

    version: int
    parents: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    device_rules: bool = False  # jobs can be fenced to their GPU device files (v1 devices, or systemd)
    path: str = ""  # "systemd", "cgroupfs v2" or "cgroupfs v1"; "" with no cgroups
    systemd_version: int = 0  # of systemd-run, on the systemd path

    @property
    def systemd(self) -> bool:
        """Jobs get transient scopes from systemd."""
        return self.path == "systemd"


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


def systemd_problem(euid: int | None = None) -> str:
    """Why systemd cannot give jobs their scopes here ('' when it can)."""
    if not SYSTEMD_RUNTIME.is_dir():
        return "systemd is not PID 1"
    if shutil.which("systemd-run") is None:
        return "systemd-run is not on PATH"
    if (os.geteuid() if euid is None else euid) != 0:
        return "the daemon is not root (a user's daemon cannot start system scopes)"
    return ""


def parse_systemd_version(text: str) -> int:
    """``systemd-run --version``'s first line → the number (0 when it says something else).

    >>> parse_systemd_version("systemd 252 (252.22-1~deb12u1)\n+PAM +AUDIT")
    252
    """
    words = text.split()
    return int(words[1]) if len(words) > 1 and words[0] == "systemd" and words[1].isdigit() else 0


def systemd_version() -> int:
    """The version of ``systemd-run`` (runs ``systemd-run --version``); 0 when it does not answer."""
    try:
        done = subprocess.run(["systemd-run", "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    return parse_systemd_version(done.stdout)


def _enable(level: Path, controllers: list[str]) -> None:
    wanted = " ".join(f"+{c}" for c in ("memory", "cpu", "cpuset", "pids") if c in controllers)
    (level / "cgroup.subtree_control").write_text(wanted)


def _into_leaf(base: Path) -> None:
    """Move this process into ``base/tuxai-daemon``, so that ``base`` may enable controllers."""
    leaf = base / LEAF
    leaf.mkdir(exist_ok=True)
    (leaf / "cgroup.procs").write_text(str(os.getpid()))


def _v2(mount: str, own: str, prepare: bool) -> CgroupSupport | None:
    base = Path(mount) / own.lstrip("/")
    try:
        controllers = (Path(mount) / "cgroup.controllers").read_text().split()
    except OSError:
        return None
    if "memory" not in controllers:
        return None
    why_not_systemd = systemd_problem()
    if not why_not_systemd and mount == "/sys/fs/cgroup":
        slice_dir = {"unified": str(Path(mount) / SLICE)}
        return CgroupSupport(2, slice_dir, device_rules=True, path="systemd", systemd_version=systemd_version())
    parent = base / PARENT
    problem = _writable_parent(parent)
    if not problem:
        try:
            # Controllers reach job groups only when every level enables them.
            try:
                _enable(base, controllers)
            except OSError as exc:
                if exc.errno != errno.EBUSY or not prepare:
                    raise
                _into_leaf(base)  # v2: a group with processes in it enables nothing below it
                _enable(base, controllers)
            _enable(parent, controllers)
        except OSError as exc:
            problem = f"cannot enable memory and cpu under {base} ({exc.strerror}: delegate it, systemd Delegate=yes)"
    if problem:
        return CgroupSupport(0, problem=f"cgroup v2: {problem} (systemd: {why_not_systemd})")
    return CgroupSupport(2, {"unified": str(parent)}, path="cgroupfs v2")


def detect_cgroups(
    mountinfo: str | None = None, proc_cgroup: str | None = None, prepare: bool = False
) -> CgroupSupport:
    """What this process may do with cgroups: systemd, then cgroupfs v2, then v1 (module docstring).

    ``prepare``: the daemon's call — it may move itself into a leaf group (cgroupfs v2).
    """
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
            v2 = _v2(point, own.get("", "/"), prepare)
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
        if devices is None:
            return CgroupSupport(1, parents, path="cgroupfs v1")
        return CgroupSupport(1, {**parents, "devices": devices}, device_rules=True, path="cgroupfs v1")
    if not mounts:
        problems.append("no cgroup file system is mounted")
    return CgroupSupport(0, problem="; ".join(problems) or "no writable memory controller")
