"""A container job on a Slurm node: the node's rank runs in the job's image through podman.

The daemon cannot know at submit which GPUs Slurm will give each node, so the node runner
(``executor.slurm_node``) makes the rank's ``Container`` on the node: the image, /dev/shm and
runtime the daemon wrote in ``launch.json``, and the GPUs Slurm gave this node's step
(``SLURM_STEP_GPUS``: the node's own GPU indices) by CDI name from the node's own specs
(``model.container.cdi_names``: an index, never ``all``). A GPU no spec names fails the rank at
start with the remedy, never runs it without its GPU. Inside, the container sees only its GPUs,
numbered from 0, so Slurm's index variables are renumbered for it (``CUDA_VISIBLE_DEVICES=1``
would name no GPU in a container that holds one). The job's checkpoint directory and its endpoint
file (where ``submit --serve``'s server writes its URL) are mounted at their paths, as on one box.
podman runs as the node runner's user: the job's own (rootless, ``--userns=keep-id``), root's for
root's jobs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from tuxai.errors import UsageError
from tuxai.model.container import CdiSpec, Container, cdi_names
from tuxai.model.resources import Allocation, GpuShare

SLURM_GPU_VARIABLES = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES")
"""Where Slurm names the node's GPUs, most exact first (the step's; ``CUDA_VISIBLE_DEVICES`` is
renumbered from 0 where Slurm constrains devices)."""

RENUMBERED = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")


def slurm_gpus(environ: Mapping[str, str]) -> tuple[int, ...]:
    """The node's GPU indices Slurm gave the step (none: a CPU job).

    >>> slurm_gpus({"SLURM_STEP_GPUS": "1,3", "CUDA_VISIBLE_DEVICES": "0,1"})
    (1, 3)
    >>> slurm_gpus({"CUDA_VISIBLE_DEVICES": "NoDevFiles"})
    ()
    """
    for name in SLURM_GPU_VARIABLES:
        words = [w.strip() for w in environ.get(name, "").split(",") if w.strip()]
        if words and all(w.isdecimal() for w in words):
            return tuple(int(w) for w in words)
    return ()


def node_container(
    data: Mapping[str, Any],
    environ: Mapping[str, str],
    specs: Sequence[CdiSpec],
    checkpoint_dir: str,
    endpoint_file: str = "",
    problems: Sequence[str] = (),
) -> tuple[Container, dict[str, str]]:
    """The rank's ``Container`` (its GPUs by CDI name) and the device variables it sees inside; the job's
    checkpoint directory and, when given, its endpoint file (``submit --serve``) mounted at their paths.
    ``problems``: the node's specs that could not be read (``model.container.read_cdi_specs``), named in
    the error of a GPU no spec names.

    >>> spec = CdiSpec("tuxai.dev/gpu", ("0", "1", "all"))
    >>> box, env = node_container({"image": "py:1"}, {"SLURM_STEP_GPUS": "1", "CUDA_VISIBLE_DEVICES": "1"}, [spec], "")
    >>> box.cdi_devices, env
    (('tuxai.dev/gpu=1',), {'CUDA_VISIBLE_DEVICES': '0'})
    """
    container = Container.from_dict(data)
    if container is None:
        raise ValueError("launch.json: a container without an image")
    gpus = slurm_gpus(environ)
    mounts = tuple(path for path in (checkpoint_dir, endpoint_file) if path)
    inside = ",".join(str(i) for i in range(len(gpus)))
    env = {name: inside for name in RENUMBERED if name in environ and gpus}
    try:
        devices = cdi_names(Allocation("", tuple(GpuShare(i, None) for i in gpus)), specs, problems)
    except UsageError as exc:
        node = environ.get("SLURMD_NODENAME", "")
        error = f"{f'node {node}: ' if node else ''}{exc.message} ({exc.hint})"
        return replace(container, cdi_devices=(), mounts=mounts, error=error), env
    return replace(container, cdi_devices=devices, mounts=mounts, error=""), env
