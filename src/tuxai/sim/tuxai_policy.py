"""The tuxai packing policy: FGD's score, with what FGD leaves to its tie-break decided on purpose.

FGD's integer score (0–100) ties many nodes; the artifact then takes the
smallest node name, which is arbitrary. tuxai keeps FGD's order and settles
its ties with two things FGD does not see, both from the same typical pods
FGD uses and both cheap (one pass over the node arrays per pod):

- **GPU models some pods need** (``pressure``): for each GPU model, the demand
  of model-constrained pods that could use it, each divided by the GPUs still
  free on the models it accepts. A GPU pod prefers the models under the least
  pressure, so an unconstrained pod leaves T4 or P100 nodes to the pods that can
  only run there. Without constrained pods every model scores the same.
- **CPU to keep GPUs usable** (``stranding``): the typical GPU pod asks ρ
  milli-CPUs per milli-GPU; a node with g free milli-GPUs and c free milli-CPUs
  can feed only c ÷ ρ of them, the rest is stranded. A pod prefers the node
  where it strands the fewest milli-GPUs: CPU-light pods go to CPU-poor nodes,
  CPU-hungry and CPU-only pods to nodes with CPU to spare.

Inside a node a shared pod takes the GPU FGD scores best, then the tightest.
"""

from __future__ import annotations

import numpy as np

from tuxai.sim.cluster import WHOLE, BoolArray, ClusterState, FloatArray, IntArray
from tuxai.sim.openb import OpenbPod
from tuxai.sim.scores import FgdScores

PRESSURE_WEIGHT = 0.9  # at most this much of one FGD point, on the most pressed model
STRANDING_PER_POINT = 20_000  # stranded milli-GPUs worth one FGD point (clipped at ±8 GPUs)
STRANDING_CLIP = 8 * WHOLE


def cpu_per_gpu(state: ClusterState) -> float:
    """ρ: milli-CPUs per milli-GPU over the typical GPU pods."""
    types = state.types
    gpus = types.num * types.milli
    asking = gpus > 0
    return float((types.weight * types.cpu)[asking].sum() / max(1, (types.weight * gpus)[asking].sum()))


def stranded(free_gpu: FloatArray | IntArray, free_cpu: FloatArray | IntArray, rho: float) -> FloatArray:
    """Free milli-GPUs a node cannot feed with its free CPU at ρ milli-CPUs each."""
    result: FloatArray = np.maximum(0.0, free_gpu - free_cpu / rho)
    return result


class TuxaiScores:
    """Nodes × GPU choices: FGD's integer score plus tie-breaks worth less than about a point."""

    def __init__(self, state: ClusterState, fgd: FgdScores) -> None:
        self.state = state
        self.fgd = fgd
        self.rho = cpu_per_gpu(state) or 1.0
        types = state.types
        first = [int(np.flatnonzero(state.model_index == m)[0]) for m in range(len(state.models))]
        self.type_models: BoolArray = types.model_ok[:, first]  # types × models
        constrained = ~self.type_models.all(axis=1) & (types.num > 0)
        self.need: FloatArray = np.where(constrained, types.weight * types.num * types.milli, 0).astype(np.float64)
        self.constrained = bool(self.need.any())

    def pressure(self, nodes: IntArray) -> FloatArray:
        """Per node, 0–1: constrained demand on its GPU model per free GPU of the models each pod accepts."""
        state = self.state
        model_free = np.bincount(state.model_index, weights=state.total_free, minlength=len(state.models))
        per_type = self.need / np.maximum(self.type_models @ model_free, 1.0)
        per_model = per_type @ self.type_models
        top = per_model.max()
        result: FloatArray = (per_model / top if top > 0 else per_model)[state.model_index[nodes]]
        return result

    def __call__(self, pod: OpenbPod, nodes: IntArray) -> FloatArray:
        """``nodes`` × GPU choices: FGD's score − pressure − stranding, inside a node the tightest GPU first."""
        state = self.state
        free_gpu, free_cpu = state.total_free[nodes], state.cpu_free[nodes]
        before = stranded(free_gpu, free_cpu, self.rho)
        after = stranded(free_gpu - pod.gpu_milli_total, free_cpu - pod.cpu_milli, self.rho)
        extra = -np.clip(after - before, -STRANDING_CLIP, STRANDING_CLIP) / STRANDING_PER_POINT
        if pod.num_gpu and self.constrained:
            extra -= PRESSURE_WEIGHT * self.pressure(nodes)
        scores = self.fgd(pod)[nodes] + extra[:, None]
        if scores.shape[1] > 1:
            scores -= np.where(np.isfinite(scores), state.gpu_free[nodes], WHOLE) / 1e8
        result: FloatArray = scores
        return result
