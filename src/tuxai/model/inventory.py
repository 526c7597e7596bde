"""The ``Inventory``: what one machine really has."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuxai.model.cpu import CpuTopology
from tuxai.model.framework import Framework
from tuxai.model.gpu import Gpu
from tuxai.model.links import LinkMatrix
from tuxai.model.system import SystemFacts


@dataclass(frozen=True)
class HugePages:
    """Explicit huge pages of one size."""

    size_bytes: int
    total: int
    free: int


@dataclass(frozen=True)
class Host:
    """The operating system's view of the machine."""

    hostname: str
    kernel: str
    distro: str
    memory_total_bytes: int | None
    memory_available_bytes: int | None = None
    hugepages: tuple[HugePages, ...] = ()


@dataclass(frozen=True)
class ProbeProblem:
    """A tool that was present but whose output could not be used.

    ``severity`` is ``error`` when part of the machine is unknown because of it,
    ``warn`` when the output was used but looks inconsistent.
    """

    tool: str
    problem: str
    severity: str = "error"


@dataclass(frozen=True)
class Inventory:
    """Host, CPUs, accelerators, their links and the frameworks that see them.

    ``source`` says where it came from: ``live``, ``replay:DIR`` or ``simulated:FILE``.
    """

    host: Host
    cpu: CpuTopology
    gpus: tuple[Gpu, ...] = ()
    links: LinkMatrix = field(default_factory=LinkMatrix)
    frameworks: tuple[Framework, ...] = ()
    problems: tuple[ProbeProblem, ...] = ()
    system: SystemFacts = field(default_factory=SystemFacts)
    source: str = "live"

    def gpus_on_numa(self, node_id: int) -> tuple[Gpu, ...]:
        """The GPUs attached to a NUMA node."""
        return tuple(g for g in self.gpus if g.numa_node == node_id)
