"""Free resources per node: GPUs (whole, shared milli and memory, MIG instances), CPUs, memory.

Built from the nodes' inventories minus the running allocations; mutable so a
``decide`` pass can take what it hands out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuxai.model.inventory import Inventory
from tuxai.model.resources import WHOLE_GPU_MILLI, Allocation


@dataclass
class GpuFree:
    """What is left of one GPU."""

    index: int
    uuid: str | None
    name: str
    numa: int | None
    memory_total: int | None
    milli_free: int = WHOLE_GPU_MILLI
    memory_free: int | None = None
    mig: bool = False
    mig_free: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # mig index → (profile, uuid)
    outside: str = ""  # busy with processes tuxai did not start: who ("pid 4242 of alice"); never handed out
    mig_outside: dict[int, str] = field(default_factory=dict)  # MIG instances so busy: index → who

    @property
    def whole_free(self) -> bool:
        """Nothing of it is taken and it is not split into MIG instances."""
        return not self.mig and self.milli_free == WHOLE_GPU_MILLI and self.memory_free == self.memory_total


@dataclass
class NodeFree:
    """What is left of one node."""

    name: str
    inventory: Inventory
    gpus: list[GpuFree]
    cpus_free: set[int]
    memory_free: int
    _dirty: bool = True  # the counts below are recomputed on first read after take or give
    _whole: int = 0
    _max_slice: int = 0

    @property
    def whole_gpus_free(self) -> int:
        """How many GPUs are entirely free."""
        if self._dirty:
            self._count()
        return self._whole

    @property
    def max_slice_milli(self) -> int:
        """The most compute left on one non-MIG GPU."""
        if self._dirty:
            self._count()
        return self._max_slice

    def _count(self) -> None:
        whole, most = 0, 0
        for gpu in self.gpus:
            if gpu.mig:
                continue
            if gpu.milli_free > most:
                most = gpu.milli_free
            if gpu.milli_free == WHOLE_GPU_MILLI and gpu.memory_free == gpu.memory_total:
                whole += 1
        self._whole, self._max_slice, self._dirty = whole, most, False

    def touch(self) -> None:
        """Recount on the next read (after a GPU's free resources were changed in place)."""
        self._dirty = True

    def take(self, allocation: Allocation, clamp: bool = False, memory: bool = True) -> None:
        """Remove an allocation's resources from what is free.

        ``clamp`` keeps counts at zero when some of it is already taken (a view
        that holds a reservation as well as what runs now).
        """
        for share in allocation.gpus:
            gpu = self.gpus[share.index]
            if share.mig_index is not None:
                gpu.mig_free.pop(share.mig_index, None)
                continue
            gpu.milli_free -= share.milli
            if gpu.memory_free is not None:
                gpu.memory_free -= share.memory_bytes if share.memory_bytes is not None else gpu.memory_free
            if clamp:
                gpu.milli_free = max(0, gpu.milli_free)
                gpu.memory_free = None if gpu.memory_free is None else max(0, gpu.memory_free)
        self.cpus_free.difference_update(allocation.cpus)
        if memory:
            self.memory_free -= allocation.memory_bytes
        if clamp:
            self.memory_free = max(0, self.memory_free)
        self._dirty = True

    def copy(self) -> NodeFree:
        """An independent copy to try things on."""
        gpus = [
            GpuFree(
                g.index,
                g.uuid,
                g.name,
                g.numa,
                g.memory_total,
                g.milli_free,
                g.memory_free,
                g.mig,
                dict(g.mig_free),
                g.outside,
                g.mig_outside,
            )
            for g in self.gpus
        ]
        return NodeFree(self.name, self.inventory, gpus, set(self.cpus_free), self.memory_free)

    def give(self, allocation: Allocation) -> None:
        """Return an allocation's resources (a job that ends or is preempted)."""
        for share in allocation.gpus:
            gpu = self.gpus[share.index]
            if gpu.outside:  # still busy outside tuxai when this job ends
                continue
            if share.mig_index is not None:
                mig = next(
                    (m for m in self.inventory.gpus[share.index].mig_devices if m.index == share.mig_index), None
                )
                if mig is not None and mig.index not in gpu.mig_outside:  # else still busy outside tuxai
                    gpu.mig_free[mig.index] = (mig.profile or "", mig.uuid)
                continue
            gpu.milli_free += share.milli
            if gpu.memory_free is not None and gpu.memory_total is not None:
                taken = share.memory_bytes if share.memory_bytes is not None else gpu.memory_total - gpu.memory_free
                gpu.memory_free = min(gpu.memory_total, gpu.memory_free + taken)
        self.cpus_free.update(allocation.cpus)
        self.memory_free += allocation.memory_bytes
        self._dirty = True


def empty_node(name: str, inventory: Inventory) -> NodeFree:
    """A node with nothing running."""
    gpus = [
        GpuFree(
            index=position,
            uuid=gpu.uuid,
            name=gpu.name,
            numa=gpu.numa_node,
            memory_total=gpu.memory_total_bytes,
            memory_free=gpu.memory_total_bytes,
            mig=bool(gpu.mig_enabled),
            mig_free={m.index: (m.profile or "", m.uuid) for m in gpu.mig_devices} if gpu.mig_enabled else {},
        )
        for position, gpu in enumerate(inventory.gpus)
    ]
    memory = inventory.host.memory_total_bytes or 0
    return NodeFree(name, inventory, gpus, set(inventory.cpu.online_cpus), memory)


def free_state(nodes: list[tuple[str, Inventory]], running: list[tuple[str, Allocation]]) -> dict[str, NodeFree]:
    """Every node's free resources: empty nodes minus what ``running`` holds (by node name)."""
    state = {name: empty_node(name, inventory) for name, inventory in nodes}
    for node, allocation in running:
        if node in state:
            state[node].take(allocation)
    return state
