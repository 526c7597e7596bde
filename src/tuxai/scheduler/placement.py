"""Where a request goes: the node, the GPU set with the best links, NUMA-local CPUs.

Whole GPUs: among the node's free GPUs, the set whose worst link is best
(NVLink > same switch > same NUMA node > across sockets), then the one that
breaks the fewest free NUMA-local groups (small jobs go where GPUs are already
in use, so large blocks stay whole). Shared slices and MIG instances go
best-fit: the tightest GPU that fits, so whole GPUs stay whole.
"""

from __future__ import annotations

from itertools import combinations

from tuxai.model.links import LinkMatrix
from tuxai.model.resources import WHOLE_GPU_MILLI, Allocation, GpuShare, Request
from tuxai.scheduler.capacity import GpuFree, NodeFree

_EXACT_SEARCH_LIMIT = 10  # above this many free GPUs, grow sets greedily instead of trying all


def type_matches(name: str, types: tuple[str, ...]) -> bool:
    """Whether a GPU product name matches one of the allowed types (``A100`` in ``NVIDIA A100-SXM4-80GB``)."""
    return not types or any(t.lower() in name.lower() for t in types)


def _link_cost(links: LinkMatrix, chosen: tuple[int, ...]) -> tuple[int, int]:
    if len(chosen) < 2 or links.size == 0:
        return (0, 0)
    ranks = [links.between(a, b).rank for a, b in combinations(chosen, 2) if a < links.size and b < links.size]
    return (max(ranks, default=0), sum(ranks))


def _breakage(node: NodeFree, chosen: tuple[int, ...], free: list[GpuFree]) -> int:
    """Free GPUs left behind in the NUMA groups the set touches: fewer keeps whole groups whole."""
    touched = {node.gpus[i].numa for i in chosen}
    return sum(1 for g in free if g.numa in touched and g.index not in chosen)


def _candidate_sets(free: list[GpuFree], count: int, links: LinkMatrix) -> list[tuple[int, ...]]:
    indices = [g.index for g in free]
    if len(indices) <= _EXACT_SEARCH_LIMIT:
        return list(combinations(indices, count))
    sets = []
    for seed in indices:
        chosen = [seed]
        while len(chosen) < count:
            rest = [i for i in indices if i not in chosen]
            chosen.append(min(rest, key=lambda i: (_link_cost(links, (*chosen, i)), i)))
        sets.append(tuple(sorted(chosen)))
    return sorted(set(sets))


def _whole(
    node: NodeFree, request: Request, avoid: frozenset[int] = frozenset()
) -> tuple[tuple[int, ...], tuple[int, int, int, int]] | None:
    free = [g for g in node.gpus if g.whole_free and type_matches(g.name, request.gpu_types)]
    if len(free) < request.gpus:
        return None
    links = node.inventory.links
    best: tuple[tuple[int, int, int, int], tuple[int, ...]] | None = None
    for chosen in _candidate_sets(free, request.gpus, links):
        cost = (*_link_cost(links, chosen), sum(1 for i in chosen if i in avoid), _breakage(node, chosen, free))
        key = (cost, chosen)
        if best is None or key < best:
            best = key
    if best is None:
        return None
    return best[1], best[0]


def slice_memory(gpu: GpuFree, request: Request) -> int | None:
    """A slice's GPU memory: what it asked, else its compute share of the GPU's memory."""
    if request.gpu_mem_bytes is not None:
        return request.gpu_mem_bytes
    if gpu.memory_total is None:
        return None
    return gpu.memory_total * request.gpu_milli // WHOLE_GPU_MILLI


def _shared(node: NodeFree, request: Request) -> GpuFree | None:
    def fits(gpu: GpuFree) -> bool:
        if gpu.mig or not type_matches(gpu.name, request.gpu_types) or gpu.milli_free < request.gpu_milli:
            return False
        memory = slice_memory(gpu, request)
        if memory is None or gpu.memory_free is None:
            return request.gpu_mem_bytes is None
        return gpu.memory_free >= memory

    options = [g for g in node.gpus if fits(g)]
    # Tightest first; an already shared GPU before a whole one; then the lowest index.
    return min(options, key=lambda g: (g.whole_free, g.milli_free, g.index), default=None)


def _mig(node: NodeFree, request: Request) -> list[tuple[GpuFree, int, str | None]] | None:
    found: list[tuple[GpuFree, int, str | None]] = []
    gpus = sorted(
        (g for g in node.gpus if g.mig and type_matches(g.name, request.gpu_types)),
        key=lambda g: (len(g.mig_free), g.index),
    )
    for gpu in gpus:
        for mig_index, (profile, uuid) in sorted(gpu.mig_free.items()):
            if profile == request.mig_profile and len(found) < request.gpus:
                found.append((gpu, mig_index, uuid))
    return found if len(found) == request.gpus else None


def _cpus(node: NodeFree, count: int, numa_nodes: set[int | None]) -> tuple[int, ...] | None:
    if count > len(node.cpus_free):
        return None
    local: list[int] = []
    for numa in node.inventory.cpu.numa_nodes:
        if numa.id in numa_nodes:
            local.extend(c for c in numa.cpus if c in node.cpus_free)
    rest = sorted(node.cpus_free - set(local))
    return tuple(sorted((sorted(local) + rest)[:count]))


def place_on_node(
    node: NodeFree, request: Request, avoid: frozenset[int] = frozenset()
) -> tuple[Allocation, tuple[int, ...]] | None:
    """The best allocation of ``request`` on one node and its cost (lower is better), or None.

    ``avoid``: GPU indices to use only when the links would otherwise be worse.
    """
    if request.memory_bytes > node.memory_free or request.cpus > len(node.cpus_free):
        return None
    shares: list[GpuShare] = []
    cost: tuple[int, ...] = ()
    if request.mig_profile is not None:
        found = _mig(node, request)
        if found is None:
            return None
        shares = [GpuShare(g.index, g.uuid, 0, None, uuid, mig) for g, mig, uuid in found]
        cost = (0, 0, sum(len(g.mig_free) for g, _, _ in found))
    elif request.shared:
        gpu = _shared(node, request)
        if gpu is None:
            return None
        shares = [GpuShare(gpu.index, gpu.uuid, request.gpu_milli, slice_memory(gpu, request) or 0)]
        cost = (0, 0, gpu.milli_free - request.gpu_milli)
    elif request.gpus:
        whole = _whole(node, request, avoid)
        if whole is None:
            return None
        chosen, cost = whole
        shares = [GpuShare(i, node.gpus[i].uuid, WHOLE_GPU_MILLI) for i in chosen]
    numa = {node.gpus[s.index].numa for s in shares}
    cpus = _cpus(node, request.cpus, numa)
    if cpus is None:
        return None
    allocation = Allocation(node.name, tuple(shares), cpus, request.memory_bytes)
    return allocation, cost


def place(nodes: list[NodeFree], request: Request, avoid: dict[str, frozenset[int]] | None = None) -> Allocation | None:
    """The best node for the request: best links first, then the node left tightest (best fit), then name.

    ``avoid`` maps node names to GPUs to spare where links allow (a reservation
    prefers GPUs that are busy now, so free ones stay free for backfill).
    """
    best: tuple[tuple[object, ...], Allocation] | None = None
    for node in nodes:
        # Cheap necessary conditions first: most nodes are ruled out here on a busy cluster.
        if request.cpus > len(node.cpus_free) or request.memory_bytes > node.memory_free:
            continue
        if request.shared:
            if node.max_slice_milli < request.gpu_milli:
                continue
        elif request.gpus and request.mig_profile is None and node.whole_gpus_free < request.gpus:
            continue
        placed = place_on_node(node, request, (avoid or {}).get(node.name, frozenset()))
        if placed is None:
            continue
        allocation, cost = placed
        left = node.whole_gpus_free - (
            len(allocation.gpus) if not request.shared and request.mig_profile is None else 0
        )
        key = (cost[:2], left, cost[2:], node.name)
        if best is None or key < best[0]:
            best = (key, allocation)
    return None if best is None else best[1]
