"""``numactl --hardware``: NUMA nodes, their CPUs, memory and distances. Pure parser."""

from __future__ import annotations

import re

from tuxai.errors import ToolOutputError
from tuxai.model.cpu import NumaNode

TOOL = "numactl --hardware"


def parse_numactl_hardware(text: str) -> tuple[NumaNode, ...]:
    """``numactl --hardware`` → NUMA nodes.

    ``"node 0 cpus: 0 1\\nnode 0 size: 193129 MB\\n…node distances:\\nnode 0 1\\n 0: 10 32"``
    → ``(NumaNode(id=0, cpus=(0, 1), memory_total_bytes=193129 MiB, distances=(10, 32)), …)``.

    Raises:
        ToolOutputError: no node lines, or distances that do not match the nodes.
    """
    cpus: dict[int, tuple[int, ...]] = {}
    sizes: dict[int, int] = {}
    distances: dict[int, tuple[int, ...]] = {}
    in_distances = False
    for line in text.splitlines():
        if line.startswith("node distances"):
            in_distances = True
            continue
        if in_distances:
            match = re.match(r"^\s*(\d+):\s+([\d\s]+)$", line)
            if match:
                distances[int(match.group(1))] = tuple(int(v) for v in match.group(2).split())
            continue
        match = re.match(r"^node (\d+) cpus:(.*)$", line)
        if match:
            values = match.group(2).split()
            if not all(v.isdigit() for v in values):
                raise ToolOutputError(
                    TOOL, f"node {match.group(1)} has a malformed CPU list: {match.group(2).strip()!r}"
                )
            cpus[int(match.group(1))] = tuple(int(v) for v in values)
            continue
        match = re.match(r"^node (\d+) size: (\d+) MB$", line)
        if match:
            sizes[int(match.group(1))] = int(match.group(2)) * 1024**2
    if not cpus:
        raise ToolOutputError(TOOL, "no 'node N cpus:' lines")
    for node, row in distances.items():
        if len(row) != len(cpus):
            raise ToolOutputError(TOOL, f"node {node} has {len(row)} distances for {len(cpus)} nodes")
    return tuple(
        NumaNode(id=node, cpus=cpus[node], memory_total_bytes=sizes.get(node), distances=distances.get(node, ()))
        for node in sorted(cpus)
    )
