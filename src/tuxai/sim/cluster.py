"""A cluster as arrays (nodes × GPUs), and the fragmentation measure of FGD over it.

Pure numpy: the packing replay scores every node for every pod, 10,000 pods
on 1,213 nodes, so per-node Python objects would be two orders too slow.
Fragmentation is kept in integers (pod counts × milli-GPUs, not frequencies ×
milli-GPUs) so that a placement that leaves it unchanged scores exactly 50,
as the artifact's float sums do when nothing moves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tuxai.sim.openb import OpenbNode, OpenbPod

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

WHOLE = 1000  # milli-GPUs in one GPU
TYPICAL_COVER = 0.95  # the artifact's podPopularityThreshold: 95 % of pods


def shape(pod: OpenbPod) -> tuple[int, int, int, str]:
    """The artifact's request tuple: (cpu_milli, gpu_milli, num_gpu, gpu_spec); CPU-only pods carry no GPU fields.

    ``gpu_spec`` stays the ``|``-joined text: two spellings of one set are two tuples there too.
    """
    if pod.num_gpu == 0:
        return (pod.cpu_milli, 0, 0, "")
    return (pod.cpu_milli, pod.gpu_milli, pod.num_gpu, "|".join(pod.gpu_spec))


@dataclass(frozen=True)
class PodTypes:
    """The target workload of FGD: the most common request tuples and how many pods each has."""

    cpu: IntArray
    num: IntArray
    milli: IntArray
    weight: IntArray  # pods of each type in the list; frequency = weight / weight.sum()
    model_ok: BoolArray  # types × nodes

    @property
    def count(self) -> int:
        """How many types."""
        return len(self.weight)

    @property
    def freq(self) -> FloatArray:
        """Each type's share of the typical pods (sums to 1)."""
        result: FloatArray = self.weight / self.weight.sum()
        return result


def typical_pods(pods: tuple[OpenbPod, ...], nodes: tuple[OpenbNode, ...], cover: float = TYPICAL_COVER) -> PodTypes:
    """The most common request tuples, CPU-only ones included, until they cover ``cover`` of the pods.

    Ordered as the artifact's ``GetTypicalPods``: by count, ties by the larger tuple first.
    """
    counts = Counter(shape(p) for p in pods)
    ordered = sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)
    kept: list[tuple[tuple[int, int, int, str], int]] = []
    covered = 0
    for key, count in ordered:
        if covered >= cover * len(pods):
            break
        kept.append((key, count))
        covered += count
    models = [n.model for n in nodes]
    return PodTypes(
        cpu=np.array([k[0] for k, _ in kept], dtype=np.int64),
        num=np.array([k[2] for k, _ in kept], dtype=np.int64),
        milli=np.array([k[1] for k, _ in kept], dtype=np.int64),
        weight=np.array([c for _, c in kept], dtype=np.int64),
        model_ok=np.array([[not k[3] or m in k[3].split("|") for m in models] for k, _ in kept], dtype=bool),
    )


class ClusterState:
    """Free resources of every node and GPU, with FGD's per-node bookkeeping kept current.

    ``changed_at[node]`` is the placement number that last changed the node, so
    scores computed before it can be kept for every other node.
    """

    def __init__(self, nodes: tuple[OpenbNode, ...], types: PodTypes, fragmentation: bool = True) -> None:
        self.nodes = nodes
        self.types = types
        self.tracks_fragmentation = fragmentation  # random and best-fit need none of it
        width = max(n.gpus for n in nodes) or 1
        self.exists: BoolArray = np.array([[g < n.gpus for g in range(width)] for n in nodes], dtype=bool)
        self.gpu_free: IntArray = np.where(self.exists, WHOLE, 0).astype(np.int64)
        self.cpu_free: IntArray = np.array([n.cpu_milli for n in nodes], dtype=np.int64)
        self.mem_free: IntArray = np.array([n.memory_mib for n in nodes], dtype=np.int64)
        self.gpu_count: IntArray = self.exists.sum(axis=1)
        self.total_free: IntArray = self.gpu_count * WHOLE  # free milli-GPUs per node
        self.capacity_milli = int(self.gpu_count.sum()) * WHOLE
        self.allocated_milli = 0
        self.models = sorted({n.model for n in nodes})
        self.model_index: IntArray = np.array([self.models.index(n.model) for n in nodes], dtype=np.int64)
        self.placements = 0
        self.changed_at: IntArray = np.zeros(len(nodes), dtype=np.int64)
        # Per node × type: GPUs with room for the type, and the free milli-GPUs on GPUs without.
        self.model_ok: BoolArray = np.ascontiguousarray(types.model_ok.T)  # nodes × types
        self.cpu_type: BoolArray = types.num == 0
        self.fits_count: IntArray = np.zeros((len(nodes), types.count), dtype=np.int64)
        self.below: IntArray = np.zeros((len(nodes), types.count), dtype=np.int64)
        self.frag: IntArray = np.zeros(len(nodes), dtype=np.int64)  # Σ weight × milli-GPUs (÷ Σ weight: FGD's F)
        for node in range(len(nodes) if fragmentation else 0):
            self._refresh(node)
        self._eligible: dict[tuple[int, int, int, tuple[str, ...]], tuple[int, BoolArray]] = {}
        self._gpu_tables: dict[int, tuple[IntArray, IntArray]] = {}

    def _refresh(self, node: int) -> None:
        free = self.gpu_free[node][self.exists[node]]
        ge = free[:, None] >= self.types.milli[None, :]
        self.fits_count[node] = ge.sum(axis=0)
        self.below[node] = np.where(ge, 0, free[:, None]).sum(axis=0)
        self._refresh_frag(node)

    def _refresh_frag(self, node: int) -> None:
        nodes = np.array([node])
        self.frag[node] = self._fragmentation(
            nodes, self.cpu_free[nodes], self.fits_count[nodes], self.below[nodes], self.total_free[nodes]
        )[0]

    def _fragmentation(
        self, nodes: IntArray, cpu_free: IntArray, fits_count: IntArray, below: IntArray, total: IntArray
    ) -> IntArray:
        """Σ types weight × milli-GPUs the type cannot use (leading axes broadcast)."""
        types = self.types
        can_run = self.model_ok[nodes] & (cpu_free[..., None] >= types.cpu) & (fits_count >= types.num)
        unusable = np.where(self.cpu_type | ~can_run, total[..., None], below)
        result: IntArray = unusable @ types.weight
        return result

    def eligible(self, pod: OpenbPod) -> IntArray:
        """The nodes that can take the pod now: model, CPU, memory and enough GPUs with room.

        Kept per request (memory aside: it varies by pod and seldom binds) and
        brought up to date for the nodes placed on since.
        """
        key = (pod.cpu_milli, pod.num_gpu, pod.gpu_milli, pod.gpu_spec)
        cached = self._eligible.get(key)
        if cached is None:
            ok = self._eligible_now(pod, slice(None))
        else:
            at, ok = cached
            if at != self.placements:
                stale = np.flatnonzero(self.changed_at > at)
                ok[stale] = self._eligible_now(pod, stale)
        self._eligible[key] = (self.placements, ok)
        nodes = np.flatnonzero(ok)
        result: IntArray = nodes[self.mem_free[nodes] >= pod.memory_mib]
        return result

    def _eligible_now(self, pod: OpenbPod, nodes: IntArray | slice) -> BoolArray:
        ok: BoolArray = self.cpu_free[nodes] >= pod.cpu_milli
        if pod.num_gpu:
            if pod.gpu_spec:  # the artifact's pods carry a model only when they ask for GPUs
                allowed = [self.models.index(m) for m in pod.gpu_spec if m in self.models]
                ok &= np.isin(self.model_index[nodes], allowed)
            room = (self.gpu_free[nodes] >= pod.gpu_milli) & self.exists[nodes]
            ok &= room.sum(axis=1) >= pod.num_gpu
        return ok

    def fragmentation_after(self, pod: OpenbPod, nodes: IntArray) -> IntArray:
        """F (× Σ weight) of each node after placing the pod; shared pods: one column per GPU (nodes × GPUs).

        Whole-GPU and CPU-only pods give a single column; a column where the pod
        does not fit holds -1.
        """
        cpu_after = self.cpu_free[nodes] - pod.cpu_milli
        total = self.total_free[nodes]
        if not is_shared(pod):
            taken = pod.num_gpu
            fits_after = self.fits_count[nodes] - taken  # whole GPUs held room for every type
            frag = self._fragmentation(nodes, cpu_after, fits_after, self.below[nodes], total - taken * WHOLE)
            single: IntArray = frag[:, None]
            return single
        # Only the GPUs with room matter: (node, GPU) pairs, flattened.
        old = self.gpu_free[nodes]
        room = self.exists[nodes] & (old >= pod.gpu_milli)
        pair_node, pair_gpu = np.nonzero(room)
        fits_delta, below_delta = self._gpu_change(pod.gpu_milli)
        before = old[pair_node, pair_gpu]
        frag = self._fragmentation(
            nodes[pair_node],
            cpu_after[pair_node],
            self.fits_count[nodes[pair_node]] + fits_delta[before],
            self.below[nodes[pair_node]] + below_delta[before],
            total[pair_node] - pod.gpu_milli,
        )
        result: IntArray = np.full(old.shape, -1, dtype=np.int64)
        result[pair_node, pair_gpu] = frag
        return result

    def _gpu_change(self, milli: int) -> tuple[IntArray, IntArray]:
        """For a GPU with f free milli-GPUs (row f) giving ``milli`` away: the change in each type's fits and below."""
        tables = self._gpu_tables.get(milli)
        if tables is None:
            free = np.arange(WHOLE + 1)[:, None]
            after = free - milli
            type_milli = self.types.milli[None, :]
            fits = (after >= type_milli).astype(np.int64) - (free >= type_milli)
            below = np.where(after < type_milli, after, 0) - np.where(free < type_milli, free, 0)
            tables = self._gpu_tables[milli] = (fits, below)
        return tables

    def place(self, pod: OpenbPod, node: int, gpus: list[int]) -> None:
        """Take the pod's resources on ``node``: ``gpus`` are the GPU indices it uses."""
        self.cpu_free[node] -= pod.cpu_milli
        self.mem_free[node] -= pod.memory_mib
        if gpus:
            before = self.gpu_free[node, gpus]
            if self.tracks_fragmentation:
                fits_delta, below_delta = self._gpu_change(pod.gpu_milli)
                self.fits_count[node] += fits_delta[before].sum(axis=0)
                self.below[node] += below_delta[before].sum(axis=0)
            self.gpu_free[node, gpus] = before - pod.gpu_milli
        self.total_free[node] -= pod.gpu_milli_total
        self.allocated_milli += pod.gpu_milli_total
        self.placements += 1
        self.changed_at[node] = self.placements
        if self.tracks_fragmentation:
            self._refresh_frag(node)

    def whole_gpus(self, node: int, count: int) -> list[int]:
        """The first ``count`` fully free GPUs of a node (the artifact's ``AllocateExclusiveGpuId``)."""
        free = np.flatnonzero(self.exists[node] & (self.gpu_free[node] == WHOLE))
        return [int(g) for g in free[:count]]

    def tightest_gpu(self, node: int, milli: int) -> int:
        """The GPU with the least room that still fits ``milli`` (lowest index on a tie)."""
        room = np.where(self.exists[node] & (self.gpu_free[node] >= milli), self.gpu_free[node], np.iinfo(np.int64).max)
        return int(np.argmin(room))


def is_shared(pod: OpenbPod) -> bool:
    """A pod asking part of one GPU."""
    return pod.num_gpu == 1 and pod.gpu_milli < WHOLE
