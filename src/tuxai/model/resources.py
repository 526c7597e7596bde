"""What a job asks for (``Request``) and what it was given (``Allocation``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WHOLE_GPU_MILLI = 1000


@dataclass(frozen=True)
class Request:
    """A job's resource request; all of it on one node (gang: all or nothing).

    - whole GPUs: ``gpus=N`` (``gpu_milli`` 1000);
    - a shared GPU slice: ``gpus=1`` with ``gpu_milli`` below 1000 (``--gpu-share 0.25``)
      and/or ``gpu_mem_bytes`` (``--gpu-mem 10GiB``);
    - MIG instances: ``mig_profile="1g.10gb"`` and ``gpus=N`` instances;
    - ``gpu_types``: allowed GPU models (``A100|H100``), matched inside the product name.
    """

    gpus: int = 0
    gpu_milli: int = WHOLE_GPU_MILLI
    gpu_mem_bytes: int | None = None
    mig_profile: str | None = None
    gpu_types: tuple[str, ...] = ()
    cpus: int = 1
    memory_bytes: int = 0

    @property
    def shared(self) -> bool:
        """A slice of one GPU rather than whole GPUs or MIG instances."""
        return (
            self.mig_profile is None
            and self.gpus == 1
            and (self.gpu_milli < WHOLE_GPU_MILLI or self.gpu_mem_bytes is not None)
        )

    @property
    def gpu_equivalents(self) -> float:
        """GPUs counted for accounting and sizes: 0.25 for a quarter slice."""
        if self.mig_profile is not None:
            return float(self.gpus)
        return self.gpus * self.gpu_milli / WHOLE_GPU_MILLI


@dataclass(frozen=True)
class GpuShare:
    """One GPU (or a slice of it) in an allocation."""

    index: int
    uuid: str | None
    milli: int = WHOLE_GPU_MILLI
    memory_bytes: int | None = None
    mig_uuid: str | None = None
    mig_index: int | None = None


@dataclass(frozen=True)
class Allocation:
    """Where a job runs: the node, its GPUs or slices, its CPUs and memory."""

    node: str
    gpus: tuple[GpuShare, ...] = ()
    cpus: tuple[int, ...] = ()
    memory_bytes: int = 0
    more: tuple[Allocation, ...] = ()  # a gang's other nodes, in rank order (this one is rank 0's)

    @property
    def visible_devices(self) -> str:
        """The value for ``CUDA_VISIBLE_DEVICES``: MIG UUIDs, else GPU UUIDs, else indices."""
        return ",".join(g.mig_uuid or g.uuid or str(g.index) for g in self.gpus)


def allocation_to_dict(allocation: Allocation) -> dict[str, object]:
    """``Allocation`` → plain JSON data (the stored form; a gang's other nodes under ``more``)."""
    more = {"more": [allocation_to_dict(a) for a in allocation.more]} if allocation.more else {}
    return {
        "node": allocation.node,
        "gpus": [
            {
                "index": g.index,
                "uuid": g.uuid,
                "milli": g.milli,
                "memory_bytes": g.memory_bytes,
                "mig_uuid": g.mig_uuid,
                "mig_index": g.mig_index,
            }
            for g in allocation.gpus
        ],
        "cpus": list(allocation.cpus),
        "memory_bytes": allocation.memory_bytes,
    } | more


def allocation_from_dict(data: dict[str, Any]) -> Allocation:
    """The stored form → ``Allocation`` (``KeyError``/``TypeError`` on a damaged record)."""
    return Allocation(
        node=str(data["node"]),
        gpus=tuple(
            GpuShare(
                index=int(g["index"]),
                uuid=g.get("uuid"),
                milli=int(g.get("milli", WHOLE_GPU_MILLI)),
                memory_bytes=g.get("memory_bytes"),
                mig_uuid=g.get("mig_uuid"),
                mig_index=g.get("mig_index"),
            )
            for g in data.get("gpus", [])
        ),
        cpus=tuple(int(c) for c in data.get("cpus", [])),
        memory_bytes=int(data.get("memory_bytes", 0)),
        more=tuple(allocation_from_dict(a) for a in data.get("more", ())),
    )
