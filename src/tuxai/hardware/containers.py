"""What containers need on this host, read from it: podman, its runtimes, the cgroup mode, the CDI specs.

The facts are gathered here (files, ``PATH``, ``podman --version``); what they mean is the
doctor's (``doctor.container_checks``) and the daemon's (``daemon.containers``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tuxai.model.container import CdiSpec, has_subid_range
from tuxai.model.container import read_cdi_specs as read_cdi_specs  # the one reader (doctor, daemon)

RUNTIMES = ("runc", "crun")
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
SBIN = ":/usr/local/sbin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class ContainerHost:
    """Facts about this host's container tools."""

    podman_version: str = ""  # "": no podman
    runtimes: tuple[str, ...] = ()  # the OCI runtimes on PATH
    cgroup_version: int = 0  # 1 or 2 (0: none mounted)
    hybrid: bool = False  # cgroup v1 with a cgroup2 mount beside it (crun refuses it)
    cdi_specs: tuple[CdiSpec, ...] = ()
    cdi_problems: tuple[str, ...] = field(default_factory=tuple)  # specs that could not be read
    rootless_user: str = ""  # podman runs as this user here (tuxai is not root); "": root's podman
    subids: tuple[bool, bool] = (True, True)  # that user has ranges in /etc/subuid, /etc/subgid


def cgroup_mode(root: Path = Path("/sys/fs/cgroup")) -> tuple[int, bool]:
    """(version, hybrid) of the cgroup mount at ``root``: 2 when it is cgroup2 itself."""
    if (root / "cgroup.controllers").exists():
        return 2, False
    if (root / "memory").is_dir() or (root / "pids").is_dir():
        return 1, (root / "unified").is_dir()
    return 0, False


def on_path(names: Sequence[str]) -> tuple[str, ...]:
    """Which of ``names`` are on PATH (the sbin directories included: runc lives there)."""
    path = os.environ.get("PATH", "") + SBIN
    return tuple(n for n in names if shutil.which(n, path=path))


def podman_version() -> str:
    """``podman --version``'s version ("" without podman)."""
    if not on_path(["podman"]):
        return ""
    try:
        out = subprocess.run(["podman", "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().rpartition(" ")[2] or "unknown"


def probe_container_host() -> ContainerHost:
    """The facts, read now."""
    version, hybrid = cgroup_mode()
    specs, problems = read_cdi_specs()
    user = rootless_user()
    return ContainerHost(podman_version(), on_path(RUNTIMES), version, hybrid, tuple(specs), tuple(problems), user,
                         subid_ranges(user) if user else (True, True))  # fmt: skip


def rootless_user() -> str:
    """This process's user name when it is not root (its podman is rootless), else ""."""
    uid = os.getuid()
    if uid == 0:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def subid_ranges(user: str, files: Sequence[Path] = SUBID_FILES) -> tuple[bool, bool]:
    """Whether ``user`` (this process's) has a subordinate uid range and a gid range (``has_subid_range``)."""
    found = []
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            text = ""
        found.append(has_subid_range(text, user, os.getuid()))
    return found[0], found[1]
