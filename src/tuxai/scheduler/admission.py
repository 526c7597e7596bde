"""Requests that can never fit any node are rejected with the reason, not queued forever."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from tuxai.model.resources import Request
from tuxai.model.units import format_bytes
from tuxai.scheduler.capacity import empty_node
from tuxai.scheduler.placement import place_on_node, type_matches
from tuxai.scheduler.snapshot import Job, Node
from tuxai.scheduler.unavailable import mig_note


def _describe(nodes: tuple[Node, ...]) -> str:
    parts = []
    for node in nodes:
        names = Counter(g.name for g in node.inventory.gpus)
        gpus = " + ".join(f"{count} × {name}" for name, count in names.items()) or "no GPU"
        cpu = node.inventory.cpu.logical_cpus
        memory = format_bytes(node.inventory.host.memory_total_bytes)
        parts.append(f"{node.name}: {gpus}, {cpu} CPUs, {memory}")
    if len(parts) > 3:
        parts = [*parts[:3], f"and {len(parts) - 3} more node(s)"]
    return "; ".join(parts)


def _with_mig(reason: str, request: Request, nodes: tuple[Node, ...]) -> str:
    note = mig_note([g for n in nodes for g in n.inventory.gpus], request)
    return f"{reason}: {note}" if note else reason


def rejection(job: Job, nodes: tuple[Node, ...]) -> str | None:
    """Why the job could not run even on empty nodes, or None when some node could take it."""
    return _rejection(job.request, nodes)


@lru_cache(maxsize=4096)
def _rejection(request: Request, nodes: tuple[Node, ...]) -> str | None:
    if any(place_on_node(empty_node(n.name, n.inventory), request) is not None for n in nodes):
        return None
    matching = [[g for g in n.inventory.gpus if type_matches(g.name, request.gpu_types)] for n in nodes]
    if request.gpu_types and not any(matching):
        reason = f"no GPU of type {'|'.join(request.gpu_types)}"
    elif request.mig_profile is not None:
        reason = f"no node has {request.gpus} MIG instance(s) of profile {request.mig_profile}"
    elif (
        request.gpus
        and not request.shared
        and max(len([g for g in m if not g.mig_enabled]) for m in matching) < request.gpus
    ):
        reason = _with_mig(f"asks for {request.gpus} whole GPUs on one node", request, nodes)
    elif request.shared:
        reason = _with_mig("no GPU has room for this slice (memory or compute share)", request, nodes)
    elif all(request.cpus > n.inventory.cpu.logical_cpus for n in nodes):
        reason = f"asks for {request.cpus} CPUs"
    elif all(request.memory_bytes > (n.inventory.host.memory_total_bytes or 0) for n in nodes):
        reason = f"asks for {format_bytes(request.memory_bytes)} of memory"
    else:
        reason = "asks for more GPUs, CPUs and memory together than one node has"
    return f"{reason}; this cluster has {_describe(nodes)}"
