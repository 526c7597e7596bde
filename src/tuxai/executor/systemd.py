"""A job's limits from systemd: a transient scope in a slice of its own (cgroup v2 hosts).

On a host whose PID 1 is systemd (Ubuntu 22.04+, Debian 12, RHEL 9), tuxai does not write
the cgroup tree systemd owns; it asks systemd. The shim starts the job as

    systemd-run --scope --quiet --collect --slice=tuxai-<tag>_job_<id>_<n>.slice
                --unit=tuxai-<tag>-job-<id>-<n>.scope -p MemoryMax=… -p AllowedCPUs=…
                -p TasksMax=… -p DevicePolicy=closed -p DeviceAllow=/dev/nvidia0 rw …
                --uid=U --gid=G -- env -C WORKDIR -- COMMAND…

``systemd-run`` registers the scope around itself, switches to the user and ``exec``s: the
job keeps the shim as its parent (the shim contract is unchanged: exit status, signals,
time limit, adoption after a restart), and systemd enforces the device policy with its own
BPF program. The slice outlives the scope, so what the job used (``memory.events``,
``memory.peak``, ``cpu.stat``: hierarchical in v2) can still be read once it has ended;
the shim stops the slice after reading it.

Pure but for ``stop``: ``plan``, ``properties``, ``run_argv`` and ``parse_proc_devices``.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuxai.model.cgroup import CgroupPlan, SystemdUnit

NVIDIA_MAJOR = 195
# Devices every NVIDIA job needs besides its own /dev/nvidiaN (those that exist are listed).
NVIDIA_SHARED = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
EXPAND_ENVIRONMENT_SINCE = 254  # systemd-run expands $VARS in a scope's command line from here on


def slice_name(name: str) -> str:
    """The job's slice, a child of ``tuxai.slice`` (a dash in a slice name is a level).

    >>> slice_name("tuxai-49d460aa-job-12-1")
    'tuxai-49d460aa_job_12_1.slice'
    """
    return "tuxai-" + name.removeprefix("tuxai-").replace("-", "_") + ".slice"


def plan(root_slice_dir: str, name: str, properties: Sequence[str], version: int) -> CgroupPlan:
    """The cgroup plan of a job run by systemd: the slice's directory (stats, kill) and the scope."""
    job_slice = slice_name(name)
    unit = SystemdUnit(job_slice, f"{name}.scope", tuple(properties), version)
    return CgroupPlan(2, {"unified": str(Path(root_slice_dir) / job_slice)}, unit)


def parse_proc_devices(text: str) -> dict[str, list[tuple[int, str]]]:
    """``/proc/devices`` → {"char": [(major, name)], "block": [...]}.

    >>> parse_proc_devices("Character devices:\\n  1 mem\\n195 nvidia-frontend\\n\\nBlock devices:\\n  8 sd\\n")
    {'char': [(1, 'mem'), (195, 'nvidia-frontend')], 'block': [(8, 'sd')]}
    """
    sections: dict[str, list[tuple[int, str]]] = {"char": [], "block": []}
    current = ""
    for line in text.splitlines():
        if line.startswith("Character devices"):
            current = "char"
        elif line.startswith("Block devices"):
            current = "block"
        else:
            parts = line.split()
            if current and len(parts) == 2 and parts[0].isdigit():
                sections[current].append((int(parts[0]), parts[1]))
    return sections


def device_properties(minors: Sequence[int], proc_devices: str, exists: Any = None) -> list[str]:
    """The device policy of an NVIDIA job: every device class of the host but NVIDIA's GPUs,
    then the job's own ``/dev/nvidiaN`` and the shared control devices.

    (systemd's ``DeviceAllow=`` is an allow list: "all but the other GPUs" is spelled as
    every other driver of ``/proc/devices`` plus the job's own GPU files.)
    """
    exists = exists or (lambda path: Path(path).exists())
    devices = parse_proc_devices(proc_devices)
    allowed = [f"char-{name} rwm" for major, name in devices["char"] if major != NVIDIA_MAJOR]
    allowed += [f"block-{name} rwm" for _, name in devices["block"]]
    allowed += [f"/dev/nvidia{m} rw" for m in minors]
    allowed += [f"{path} rw" for path in NVIDIA_SHARED if exists(path)]
    return ["DevicePolicy=closed", *(f"DeviceAllow={rule}" for rule in allowed)]


def properties(
    memory_bytes: int, cpu_quota: int, cpus: Sequence[int], pids_max: int, devices: Sequence[str]
) -> list[str]:
    """The scope's resource properties (``-p`` of ``systemd-run``); ``devices``: ``device_properties``.

    >>> properties(2**30, 2, (0, 1), 100, ())
    ['MemoryMax=1073741824', 'MemorySwapMax=0', 'CPUQuota=200%', 'AllowedCPUs=0,1', 'TasksMax=100']
    """
    found = []
    if memory_bytes:
        found += [f"MemoryMax={memory_bytes}", "MemorySwapMax=0"]
    if cpu_quota:
        found.append(f"CPUQuota={cpu_quota * 100}%")
    if cpus:
        found.append("AllowedCPUs=" + ",".join(str(c) for c in cpus))
    if pids_max:
        found.append(f"TasksMax={pids_max}")
    return [*found, *devices]


def run_argv(cgroup: CgroupPlan, user: tuple[int, int] | None, cwd: str) -> list[str]:
    """What goes before the job's command: ``systemd-run --scope …`` and, as the user, ``env -C``.

    >>> run_argv(plan("/sys/fs/cgroup/tuxai.slice", "tuxai-1-job-2-1", ["TasksMax=9"], 252), (7, 8), "/w")[1:]
    ['--scope', '--quiet', '--collect', '--slice=tuxai-1_job_2_1.slice', '--unit=tuxai-1-job-2-1.scope', \
'-p', 'TasksMax=9', '--uid=7', '--gid=8', '--', 'env', '-C', '/w', '--']
    """
    unit = cgroup.systemd
    if unit is None:
        raise ValueError("not a systemd plan")
    argv = ["systemd-run", "--scope", "--quiet", "--collect", f"--slice={unit.slice}", f"--unit={unit.scope}"]
    for prop in unit.properties:
        argv += ["-p", prop]
    if unit.version >= EXPAND_ENVIRONMENT_SINCE:
        argv.append("--expand-environment=no")  # the job's command line is the job's, $ and all
    if user is not None:
        argv += [f"--uid={user[0]}", f"--gid={user[1]}"]
    argv.append("--")
    if cwd:
        # Entered after systemd-run switched to the user (security issue A8).
        argv += ["env", "-C", cwd, "--"]
    return argv


def stop(cgroup: CgroupPlan) -> None:
    """Stop the job's slice (and whatever is left in it); best effort, the job already ended."""
    unit = cgroup.systemd
    if unit is None:
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["systemctl", "stop", "--no-block", unit.slice],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
