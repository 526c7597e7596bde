"""A container job's ``Container``: its image, /dev/shm, runtime, and its GPUs by CDI name.

The CDI names come from the specs podman reads (``hardware.containers.read_cdi_specs``) matched
to the scheduler's allocation (``model.container.cdi_names``); a GPU no spec names makes a
container that the shim refuses to start, with the remedy, rather than one that sees no GPU.
"""

from __future__ import annotations

import functools

from tuxai.errors import UsageError
from tuxai.hardware.containers import RUNTIMES, cgroup_mode, on_path, read_cdi_specs
from tuxai.model.container import DEFAULT_SHM_BYTES, Container, cdi_names, choose_runtime
from tuxai.model.job import JobSpec
from tuxai.model.resources import Allocation


@functools.cache
def host_runtime() -> str:
    """The OCI runtime podman is told to use on this host (found once: runc on cgroup v1 or hybrid)."""
    return choose_runtime(*cgroup_mode(), on_path(RUNTIMES))


def container_for(spec: JobSpec, allocation: Allocation) -> Container | None:
    """The job's ``Container`` (None: it runs bare): its GPUs by CDI name from ``allocation``."""
    if not spec.image:
        return None
    shm = spec.shm_bytes or DEFAULT_SHM_BYTES
    try:
        devices = cdi_names(allocation, read_cdi_specs()[0]) if allocation.gpus else ()
    except UsageError as exc:
        return Container(spec.image, shm, (), host_runtime(), str(exc))
    return Container(spec.image, shm, devices, host_runtime())
