"""A cluster as arrays (nodes × GPUs), and the fragmentation measure of FGD over it.

Pure numpy: the packing replay scores every node for every pod, 10,000 pods
on 1,213 nodes, so per-node Python objects would be two orders too slow.
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


@dataclass(frozen=True)
class PodTypes:
    """The target workload of FGD: the most common request tuples and their frequencies."""

    cpu: IntArray
    num: IntArray
    milli: IntArray
    freq: FloatArray
    model_ok: BoolArray  # types × nodes

    @property
    def count(self) -> int:
        """How many types."""
        return len(self.freq)


def typical_pods(pods: tuple[OpenbPod, ...], nodes: tuple[OpenbNode, ...], cover: float = 0.95) -> PodTypes:
    """Group pods by (cpu_milli, num_gpu, gpu_milli, gpu_spec), keep the most common covering ``cover``."""
    counts = Counter((p.cpu_milli, p.num_gpu, p.gpu_milli, p.gpu_spec) for p in pods)
    kept: list[tuple[tuple[int, int, int, tuple[str, ...]], int]] = []
    covered = 0
    for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if covered >= cover * len(pods):
            break
        kept.append((key, count))
        covered += count
    total = sum(count for _, count in kept)
    models = [n.model for n in nodes]
    return PodTypes(
        cpu=np.array([k[0] for k, _ in kept], dtype=np.int64),
        num=np.array([k[1] for k, _ in kept], dtype=np.int64),
        milli=np.array([k[2] for k, _ in kept], dtype=np.int64),
        freq=np.array([c / total for _, c in kept], dtype=np.float64),
        model_ok=np.array([[not k[3] or m in k[3] for m in models] for k, _ in kept], dtype=bool),
    )


class ClusterState:
    """Free resources of every node and GPU, with FGD's per-node bookkeeping kept current."""

    def __init__(self, nodes: tuple[OpenbNode, ...], types: PodTypes) -> None:
        self.nodes = nodes
        self.types = types
        width = max(n.gpus for n in nodes) or 1
        self.exists: BoolArray = np.array([[g < n.gpus for g in range(width)] for n in nodes], dtype=bool)
        self.gpu_free: IntArray = np.where(self.exists, WHOLE, 0).astype(np.int64)
        self.cpu_free: IntArray = np.array([n.cpu_milli for n in nodes], dtype=np.int64)
        self.mem_free: IntArray = np.array([n.memory_mib for n in nodes], dtype=np.int64)
        self.capacity_milli = int(self.exists.sum()) * WHOLE
        self.allocated_milli = 0
        models = sorted({n.model for n in nodes})
        self.model_index: IntArray = np.array([models.index(n.model) for n in nodes], dtype=np.int64)
        self.models = models
        # Per node × type: GPUs with room for the type, and the free milli-GPUs on GPUs without.
        self.fits_count: IntArray = np.zeros((len(nodes), types.count), dtype=np.int64)
        self.below: IntArray = np.zeros((len(nodes), types.count), dtype=np.int64)
        self.frag: FloatArray = np.zeros(len(nodes), dtype=np.float64)
        for node in range(len(nodes)):
            self._refresh(node)

    @property
    def total_free(self) -> IntArray:
        """Free milli-GPUs per node."""
        result: IntArray = self.gpu_free.sum(axis=1)
        return result

    def _refresh(self, node: int) -> None:
        free = self.gpu_free[node][self.exists[node]]
        milli = self.types.milli
        ge = free[:, None] >= milli[None, :]
        self.fits_count[node] = ge.sum(axis=0)
        self.below[node] = np.where(ge, 0, free[:, None]).sum(axis=0)
        self.frag[node] = self._fragmentation(
            np.array([node]),
            self.cpu_free[[node]],
            self.fits_count[[node]],
            self.below[[node]],
            free.sum(keepdims=True),
        )[0]

    def _fragmentation(
        self, nodes: IntArray, cpu_free: IntArray, fits_count: IntArray, below: IntArray, total: IntArray
    ) -> FloatArray:
        """F(node) = Σ types frequency × milli-GPUs the type cannot use (leading axes broadcast)."""
        types = self.types
        can_run = types.model_ok.T[nodes] & (cpu_free[..., None] >= types.cpu) & (fits_count >= types.num)
        unusable = np.where((types.num == 0) | ~can_run, total[..., None], below)
        result: FloatArray = (unusable * types.freq).sum(axis=-1)
        return result

    def eligible(self, pod: OpenbPod) -> BoolArray:
        """Nodes that can take the pod now: model, CPU, memory and enough GPUs with room."""
        ok = (self.cpu_free >= pod.cpu_milli) & (self.mem_free >= pod.memory_mib)
        if pod.gpu_spec:
            allowed = [self.models.index(m) for m in pod.gpu_spec if m in self.models]
            ok &= np.isin(self.model_index, allowed)
        if pod.num_gpu:
            ok &= ((self.gpu_free >= pod.gpu_milli) & self.exists).sum(axis=1) >= pod.num_gpu
        return ok

    def fragmentation_after(self, pod: OpenbPod, nodes: IntArray) -> FloatArray:
        """F of each candidate node after placing the pod; shared pods: one column per GPU (nodes × GPUs).

        Whole-GPU and CPU-only pods give a single column.
        """
        types = self.types
        cpu_after = self.cpu_free[nodes] - pod.cpu_milli
        total = self.gpu_free[nodes].sum(axis=1)
        if pod.num_gpu == 1 and pod.gpu_milli < WHOLE:
            old = self.gpu_free[nodes]  # nodes × GPUs
            new = old - pod.gpu_milli
            ge_old = old[..., None] >= types.milli
            ge_new = new[..., None] >= types.milli
            fits_after = self.fits_count[nodes][:, None, :] - ge_old + ge_new
            below_after = (
                self.below[nodes][:, None, :]
                - np.where(ge_old, 0, old[..., None])
                + np.where(ge_new, 0, new[..., None])
            )
            frag = self._fragmentation(
                nodes[:, None], cpu_after[:, None], fits_after, below_after, (total - pod.gpu_milli)[:, None]
            )
            valid = self.exists[nodes] & (old >= pod.gpu_milli)
            result: FloatArray = np.where(valid, frag, np.inf)
            return result
        taken = pod.num_gpu
        fits_after = self.fits_count[nodes] - np.where(types.milli <= WHOLE, taken, 0)
        frag = self._fragmentation(nodes, cpu_after, fits_after, self.below[nodes], total - taken * WHOLE)
        single: FloatArray = frag[:, None]
        return single

    def place(self, pod: OpenbPod, node: int, gpus: list[int]) -> None:
        """Take the pod's resources on ``node``: ``gpus`` are the GPU indices it uses."""
        self.cpu_free[node] -= pod.cpu_milli
        self.mem_free[node] -= pod.memory_mib
        for gpu in gpus:
            self.gpu_free[node, gpu] -= pod.gpu_milli
        self.allocated_milli += pod.gpu_milli_total
        self._refresh(node)

    def whole_gpus(self, node: int, count: int) -> list[int]:
        """The first ``count`` fully free GPUs of a node."""
        free = np.flatnonzero(self.exists[node] & (self.gpu_free[node] == WHOLE))
        return [int(g) for g in free[:count]]

    def tightest_gpu(self, node: int, milli: int) -> int:
        """The GPU with the least room that still fits ``milli`` (lowest index on a tie)."""
        room = np.where(self.exists[node] & (self.gpu_free[node] >= milli), self.gpu_free[node], np.iinfo(np.int64).max)
        return int(np.argmin(room))
