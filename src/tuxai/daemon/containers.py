"""A container job's ``Container``: its image, /dev/shm, runtime, and its GPUs by CDI name.

The CDI names come from the specs podman reads (``model.container.CDI_DIRS``) matched to the
scheduler's allocation (``model.container.cdi_names``); a GPU no spec names makes a container
that the shim refuses to start, with the remedy, rather than one that sees no GPU.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from tuxai.errors import UsageError
from tuxai.model.container import (
    CDI_DIRS,
    DEFAULT_SHM_BYTES,
    CdiSpec,
    Container,
    cdi_names,
    choose_runtime,
    parse_cdi_spec,
)
from tuxai.model.job import JobSpec
from tuxai.model.resources import Allocation

RUNTIMES = ("runc", "crun")


def read_cdi_specs(dirs: Sequence[str] = CDI_DIRS) -> list[CdiSpec]:
    """Every readable CDI spec (``*.json``, ``*.yaml``) in ``dirs``; a damaged one is skipped (the doctor names it)."""
    specs = []
    for directory in dirs:
        try:
            paths = sorted(p for p in Path(directory).iterdir() if p.suffix in (".json", ".yaml", ".yml"))
        except OSError:
            continue
        for path in paths:
            try:
                specs.append(parse_cdi_spec(path.read_text(), str(path)))
            except (OSError, UnicodeDecodeError, ValueError):
                continue
    return specs


@functools.cache
def host_runtime(cgroup_version: int) -> str:
    """The OCI runtime podman is told to use on this host (found once: runc on cgroup v1 or hybrid)."""
    hybrid = cgroup_version == 1 and os.path.isdir("/sys/fs/cgroup/unified")
    on_path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return choose_runtime(cgroup_version, hybrid, [r for r in RUNTIMES if shutil.which(r, path=on_path)])


def container_for(spec: JobSpec, allocation: Allocation, cgroup_version: int) -> Container | None:
    """The job's ``Container`` (None: it runs bare): its GPUs by CDI name from ``allocation``."""
    if not spec.image:
        return None
    shm = spec.shm_bytes or DEFAULT_SHM_BYTES
    runtime = host_runtime(cgroup_version)
    try:
        devices = cdi_names(allocation, read_cdi_specs()) if allocation.gpus else ()
    except UsageError as exc:
        return Container(spec.image, shm, (), runtime, str(exc))
    return Container(spec.image, shm, devices, runtime)
