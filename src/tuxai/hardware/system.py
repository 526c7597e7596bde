"""Linux settings (``/sys``, ``/proc``) and live facts (limits, ``/dev``, environment).

The file-backed part reads under a root; the live part (``live_facts``)
touches the running process and is recorded to ``host-facts.json`` so a
replay sees the same values.
"""

from __future__ import annotations

import os
import re
import resource
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuxai.hardware.sysfs import read_text
from tuxai.model.system import DeviceNode, SystemFacts

VISIBILITY_VARIABLES = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "HABANA_VISIBLE_DEVICES",
)
_MODULES = ("nvidia", "nvidia_uvm", "nouveau", "amdgpu", "habanalabs")
_DEVICE_GLOBS = ("nvidia[0-9]*", "nvidiactl", "nvidia-uvm", "kfd", "dri/renderD*", "accel/accel*")


def _bracketed(text: str | None) -> str | None:
    """``"always [madvise] never"`` → ``"madvise"``."""
    if text is None:
        return None
    match = re.search(r"\[(\w+)\]", text)
    return match.group(1) if match else text.strip() or None


def _int(text: str | None) -> int | None:
    return int(text) if text and text.lstrip("-").isdigit() else None


def live_facts(env: Mapping[str, str] | None = None, dev: Path = Path("/dev")) -> dict[str, Any]:
    """What only the running process can tell: /dev/shm size, memlock, /dev access, env.

    Returns a JSON-able dict, the content of ``host-facts.json``.
    """
    env = os.environ if env is None else env
    facts: dict[str, Any] = {"uid": os.getuid()}
    try:
        stat = os.statvfs(dev / "shm")
        facts["shm_total_bytes"] = stat.f_frsize * stat.f_blocks
    except OSError:
        facts["shm_total_bytes"] = None
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    facts["memlock_limit_bytes"] = None if soft == resource.RLIM_INFINITY else soft
    facts["memlock_known"] = True
    nodes = []
    for pattern in _DEVICE_GLOBS:
        for path in sorted(dev.glob(pattern)):
            nodes.append(
                {"path": str(path), "readable": os.access(path, os.R_OK), "writable": os.access(path, os.W_OK)}
            )
    facts["device_nodes"] = nodes
    facts["visible_devices_env"] = {k: env[k] for k in VISIBILITY_VARIABLES if k in env}
    return facts


def read_system_facts(root: Path, facts: Mapping[str, Any]) -> SystemFacts:
    """Kernel settings under ``root`` combined with recorded live facts."""
    governors: set[str] = set()
    cpu_base = root / "sys/devices/system/cpu"
    for path in sorted(cpu_base.glob("cpu[0-9]*/cpufreq/scaling_governor")) if cpu_base.is_dir() else []:
        value = path.read_text(errors="replace").strip()
        if value:
            governors.add(value)
    driver = None
    for path in sorted(cpu_base.glob("cpu[0-9]*/cpufreq/scaling_driver"))[:1] if cpu_base.is_dir() else []:
        driver = path.read_text(errors="replace").strip() or None
    modules = tuple(m for m in _MODULES if (root / "sys/module" / m).is_dir())
    ib_base = root / "sys/class/infiniband"
    infiniband = tuple(sorted(p.name for p in ib_base.iterdir())) if ib_base.is_dir() else ()
    env = facts.get("visible_devices_env") or {}
    return SystemFacts(
        observed=True,
        thp_enabled=_bracketed(read_text(root, "/sys/kernel/mm/transparent_hugepage/enabled")),
        thp_defrag=_bracketed(read_text(root, "/sys/kernel/mm/transparent_hugepage/defrag")),
        swappiness=_int(read_text(root, "/proc/sys/vm/swappiness")),
        numa_balancing=_int(read_text(root, "/proc/sys/kernel/numa_balancing")),
        cpufreq_driver=driver,
        cpu_governors=tuple(sorted(governors)),
        shm_total_bytes=facts.get("shm_total_bytes"),
        memlock_known=bool(facts.get("memlock_known", False)),
        memlock_limit_bytes=facts.get("memlock_limit_bytes"),
        loaded_modules=modules,
        device_nodes=tuple(
            DeviceNode(str(n["path"]), bool(n["readable"]), bool(n["writable"]))
            for n in facts.get("device_nodes") or []
        ),
        infiniband_devices=infiniband,
        visible_devices_env=tuple(sorted((str(k), str(v)) for k, v in dict(env).items())),
        uid=facts.get("uid"),
    )
