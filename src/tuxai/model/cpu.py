"""CPU sockets and NUMA nodes."""

from __future__ import annotations

from dataclasses import dataclass, field


def parse_cpulist(text: str) -> tuple[int, ...]:
    """Kernel CPU list to sorted CPU ids: ``"0-2,8"`` → ``(0, 1, 2, 8)``.

    Raises:
        ValueError: the text is not a CPU list.
    """
    cpus: set[int] = set()
    for part in text.replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, _, high = part.partition("-")
            start, stop = int(low), int(high)
            if stop < start:
                raise ValueError(f"bad CPU range {part!r} in {text!r}")
            cpus.update(range(start, stop + 1))
        else:
            cpus.add(int(part))
    return tuple(sorted(cpus))


def format_cpulist(cpus: tuple[int, ...] | list[int]) -> str:
    """CPU ids to the kernel's compact form: ``(0, 1, 2, 8)`` → ``"0-2,8"``."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        start = index
        while index + 1 < len(ordered) and ordered[index + 1] == ordered[index] + 1:
            index += 1
        low, high = ordered[start], ordered[index]
        parts.append(str(low) if low == high else f"{low}-{high}")
        index += 1
    return ",".join(parts)


@dataclass(frozen=True)
class NumaNode:
    """One NUMA node: its CPUs, its memory and its distances to every node."""

    id: int
    cpus: tuple[int, ...]
    memory_total_bytes: int | None = None
    distances: tuple[int, ...] = ()


@dataclass(frozen=True)
class CpuTopology:
    """Sockets, cores and NUMA nodes of the host."""

    model: str
    sockets: int
    cores_per_socket: int
    threads_per_core: int
    online_cpus: tuple[int, ...]
    numa_nodes: tuple[NumaNode, ...] = field(default_factory=tuple)

    @property
    def logical_cpus(self) -> int:
        """How many CPUs the kernel has online."""
        return len(self.online_cpus)

    def node(self, node_id: int) -> NumaNode | None:
        """The NUMA node with this id, if the host has it."""
        return next((n for n in self.numa_nodes if n.id == node_id), None)
