"""A container job's ``Container``: its image, /dev/shm, runtime, and its GPUs by CDI name.

The CDI names come from the specs podman reads (``hardware.containers.read_cdi_specs``) matched
to the scheduler's allocation (``model.container.cdi_names``); a GPU no spec names makes a
container that the shim refuses to start, with the remedy, rather than one that sees no GPU.
"""

from __future__ import annotations

import functools

from tuxai.errors import UsageError
from tuxai.hardware.containers import RUNTIMES, cgroup_mode, on_path, read_cdi_specs, rootless_user, subid_ranges
from tuxai.model.container import DEFAULT_SHM_BYTES, SUBID_REMEDY, Container, cdi_names, choose_runtime
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
        devices = cdi_names(allocation, *read_cdi_specs()) if allocation.gpus else ()
    except UsageError as exc:
        return Container(spec.image, shm, (), host_runtime(), str(exc), spec.serve_model)
    return Container(spec.image, shm, devices, host_runtime(), model=spec.serve_model)


def check_container_submit(spec: JobSpec) -> None:
    """Refuse at submit, in one line, a container job that cannot run here.

    Raises:
        UsageError: ``--env`` with ``--image`` (the image holds the job's Python), or no podman.
    """
    if not spec.image:
        return
    if spec.env_path:
        raise UsageError(
            "--env and --image cannot be used together: a host environment means nothing inside the image",
            hint="put the requirements in the image: tuxai image build --requirements FILE",
        )
    if not on_path(["podman"]):
        raise UsageError(
            f"this host has no podman: the job's image {spec.image} cannot run here",
            hint="apt-get install --no-install-recommends podman runc (tuxai doctor says what containers need)",
        )
    user = rootless_user()
    if user and not all(subid_ranges(user)):  # a user's own daemon: its podman is rootless (docs/containers.md)
        raise UsageError(
            f"this daemon runs as {user}, whose rootless podman has no subordinate ids (/etc/subuid, /etc/subgid): "
            f"the job's image {spec.image} cannot be unpacked",
            hint=SUBID_REMEDY.format(user=user),
        )
