"""How GPUs reach each other: NVLink, XGMI, or PCIe paths of some length."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LinkKind(StrEnum):
    """A GPU-to-GPU path, in the words of ``nvidia-smi topo -m`` and ``rocm-smi``."""

    SELF = "X"
    NVLINK = "NV"
    XGMI = "XGMI"
    PIX = "PIX"
    PXB = "PXB"
    PHB = "PHB"
    NODE = "NODE"
    SYS = "SYS"
    PCIE = "PCIE"


# Lower is better; PCIE (AMD's generic PCIe path) is ranked by its hops instead.
_RANK = {
    LinkKind.SELF: 0,
    LinkKind.NVLINK: 1,
    LinkKind.XGMI: 1,
    LinkKind.PIX: 2,
    LinkKind.PXB: 3,
    LinkKind.PHB: 4,
    LinkKind.NODE: 5,
    LinkKind.PCIE: 5,
    LinkKind.SYS: 6,
}


@dataclass(frozen=True)
class Link:
    """One cell of the matrix: the path kind and what the tool said about it."""

    kind: LinkKind
    nvlinks: int | None = None
    hops: int | None = None
    weight: int | None = None

    @property
    def label(self) -> str:
        """The cell as ``nvidia-smi topo -m`` writes it: ``NV12``, ``SYS``, ``X``."""
        if self.kind is LinkKind.NVLINK and self.nvlinks:
            return f"NV{self.nvlinks}"
        return self.kind.value

    @property
    def rank(self) -> int:
        """Closeness for placement: 0 is self, 1 a direct fabric link, 6 across sockets."""
        if self.kind is LinkKind.PCIE and self.hops is not None:
            return min(6, 2 + self.hops)
        return _RANK[self.kind]


@dataclass(frozen=True)
class LinkMatrix:
    """A square matrix of links between GPUs, indexed like ``Inventory.gpus``."""

    links: tuple[tuple[Link, ...], ...] = ()

    @property
    def size(self) -> int:
        """How many GPUs the matrix covers."""
        return len(self.links)

    def between(self, a: int, b: int) -> Link:
        """The link from GPU ``a`` to GPU ``b``."""
        return self.links[a][b]
