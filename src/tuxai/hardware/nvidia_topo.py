"""``nvidia-smi topo -m``: the GPU link matrix, NIC rows, CPU and NUMA affinity.

Handles tab- or space-separated output, ANSI colour escapes, the NIC legend
and the optional ``GPU NUMA ID`` column. Pure parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tuxai.errors import ToolOutputError
from tuxai.model.cpu import parse_cpulist
from tuxai.model.links import Link, LinkKind, LinkMatrix

TOOL = "nvidia-smi topo -m"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NV = re.compile(r"^NV(\d+)$")
_DEVICE = re.compile(r"^(GPU|NIC)\d+$")


@dataclass(frozen=True)
class GpuAffinity:
    """The CPUs and NUMA node(s) closest to one GPU."""

    cpus: tuple[int, ...]
    numa_nodes: tuple[int, ...]


@dataclass(frozen=True)
class Topology:
    """The parsed matrix: GPU links, GPU↔NIC links, affinities and NIC names."""

    gpu_names: tuple[str, ...]
    links: LinkMatrix
    nic_names: tuple[str, ...]
    nic_links: tuple[tuple[Link, ...], ...]
    affinity: tuple[GpuAffinity, ...]


def parse_link(cell: str) -> Link:
    """One matrix cell: ``"NV12"`` → ``Link(NVLINK, nvlinks=12)``; ``"SYS"`` → ``Link(SYS)``.

    Raises:
        ValueError: the cell is not a link nvidia-smi writes.
    """
    cell = cell.strip()
    nv = _NV.match(cell)
    if nv:
        return Link(LinkKind.NVLINK, nvlinks=int(nv.group(1)))
    try:
        return Link(LinkKind(cell))
    except ValueError:
        raise ValueError(f"unknown link {cell!r}") from None


_EXTRA_COLUMNS = re.compile(r"CPU Affinity|NUMA Affinity|GPU NUMA ID")


def _split_header(line: str) -> list[str]:
    """Device names first (split on any whitespace), then the multi-word affinity columns."""
    devices = []
    for token in line.split():
        if not _DEVICE.match(token):
            break
        devices.append(token)
    return devices + _EXTRA_COLUMNS.findall(line)


def parse_nvidia_topo(text: str) -> Topology:
    """``nvidia-smi topo -m`` → links between GPUs, to NICs, and each GPU's affinity.

    ``"\\tGPU0\\tGPU1\\tCPU Affinity\\tNUMA Affinity\\nGPU0\\t X \\tNV12\\t0-31\\t0\\n…"``
    → ``Topology(links=[[X, NV12], [NV12, X]], affinity=[(0-31, node 0), …])``.

    Raises:
        ToolOutputError: no header, a short row or an unknown cell.
    """
    lines = [_ANSI.sub("", line).rstrip("\n") for line in text.splitlines()]
    header_at = next((i for i, line in enumerate(lines) if line.strip().startswith("GPU0")), None)
    if header_at is None:
        raise ToolOutputError(TOOL, "no header row starting with GPU0")
    columns = _split_header(lines[header_at])
    devices = [c for c in columns if _DEVICE.match(c)]
    extras = columns[len(devices) :]
    gpu_names = tuple(d for d in devices if d.startswith("GPU"))
    rows: dict[str, list[str]] = {}
    for line in lines[header_at + 1 :]:
        if not line.strip():
            break
        cells = line.split()
        if not cells or not _DEVICE.match(cells[0]):
            break
        rows[cells[0]] = cells[1:]
    missing = [g for g in gpu_names if g not in rows]
    if missing:
        raise ToolOutputError(TOOL, f"the matrix is truncated: no row for {', '.join(missing)}")

    cell_rows: dict[str, list[Link]] = {}
    affinity: list[GpuAffinity] = []
    for name, cells in rows.items():
        if len(cells) < len(devices):
            raise ToolOutputError(TOOL, f"row {name} has {len(cells)} cells, expected {len(devices)}")
        try:
            cell_rows[name] = [parse_link(c) for c in cells[: len(devices)]]
        except ValueError as exc:
            raise ToolOutputError(TOOL, f"row {name}: {exc}") from None
        if name.startswith("GPU"):
            affinity.append(_affinity(name, cells[len(devices) :], extras))

    gpu_index = [devices.index(g) for g in gpu_names]
    nic_names = tuple(d for d in devices if d.startswith("NIC"))
    nic_index = [devices.index(n) for n in nic_names]
    links = LinkMatrix(tuple(tuple(cell_rows[g][j] for j in gpu_index) for g in gpu_names))
    nic_links = tuple(tuple(cell_rows[g][j] for j in nic_index) for g in gpu_names)
    return Topology(gpu_names, links, _nic_legend(lines) or nic_names, nic_links, tuple(affinity))


def _affinity(name: str, cells: list[str], extras: list[str]) -> GpuAffinity:
    values = dict(zip(extras, cells, strict=False))
    cpus: tuple[int, ...] = ()
    nodes: tuple[int, ...] = ()
    try:
        if values.get("CPU Affinity", "N/A") != "N/A":
            cpus = parse_cpulist(values["CPU Affinity"])
        if values.get("NUMA Affinity", "N/A") != "N/A":
            nodes = parse_cpulist(values["NUMA Affinity"])
    except ValueError as exc:
        raise ToolOutputError(TOOL, f"row {name}: bad affinity ({exc})") from None
    return GpuAffinity(cpus, nodes)


def _nic_legend(lines: list[str]) -> tuple[str, ...]:
    names = []
    for line in lines:
        match = re.match(r"^\s*NIC(\d+):\s*(\S+)\s*$", line)
        if match:
            names.append(match.group(2))
    return tuple(names)
