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


def _ask(request: Request) -> str:
    """One node's share in words: ``2 GPUs``, ``2 GPUs, 4 CPUs, 8 GiB``, ``1 CPU``."""
    parts = [f"{request.gpus} GPU{'' if request.gpus == 1 else 's'}"] if request.gpus else []
    if request.cpus > 1 or not request.gpus:
        parts.append(f"{request.cpus} CPU{'' if request.cpus == 1 else 's'}")
    if request.memory_bytes:
        parts.append(format_bytes(request.memory_bytes))
    return ", ".join(parts)


def _shape(nodes: tuple[Node, ...]) -> str:
    """The cluster's shape by GPU count: ``2 nodes with 2 GPUs each, 1 node with no GPU``."""
    by_gpus = Counter(len(n.inventory.gpus) for n in nodes)
    parts = []
    for gpus, count in sorted(by_gpus.items(), key=lambda item: -item[0]):
        has = f"{gpus} GPU{'' if gpus == 1 else 's'}" if gpus else "no GPU"
        parts.append(f"{count} node{'' if count == 1 else 's'} with {has}{' each' if count > 1 and gpus else ''}")
    return ", ".join(parts) or "no node"


def gang_rejection(request: Request, node_count: int, nodes: tuple[Node, ...]) -> str | None:
    """Why a gang of ``node_count`` nodes, each holding ``request``, could never start on ``nodes``
    (even empty, each node holding one share: a gang spreads), or None when enough nodes could.

    ``Request(gpus=2), 3, (2 nodes of 2 GPUs)`` → ``"asks 3 nodes × 2 GPUs; the cluster has 2 nodes
    with 2 GPUs each"``.
    """
    able = [n for n in nodes if place_on_node(empty_node(n.name, n.inventory), request) is not None]
    if len(able) >= node_count:
        return None
    reason = (
        f"asks {node_count} node{'' if node_count == 1 else 's'} × {_ask(request)}; the cluster has {_shape(nodes)}"
    )
    if able and len(able) < len(nodes):
        reason += f" ({len(able)} of them can hold one node's share: {', '.join(sorted(n.name for n in able))})"
    elif not able and nodes:
        single = _rejection(request, nodes)
        reason += f"; no node can hold one node's share ({single.split('; ')[0] if single else 'none fits'})"
    return reason


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
