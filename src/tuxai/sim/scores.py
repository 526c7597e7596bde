"""Node scores of the packing policies: best-fit and FGD as the artifact computes them.

Every scorer answers for all nodes at once (nodes × GPU choices; a shared pod
has one column per GPU, ``-inf`` where the GPU lacks room); the caller masks
the nodes that cannot take the pod. FGD's score depends only on the pod's
(cpu, GPUs, milli-GPUs) and on the node, and one placement changes one node,
so scores are kept per request tuple and recomputed only for the nodes that
changed since: a replay scores each node once per change, not once per pod.
"""

from __future__ import annotations

import numpy as np

from tuxai.sim.cluster import ClusterState, FloatArray, IntArray, is_shared
from tuxai.sim.openb import OpenbPod

BEST_FIT_MAX_CPU = 128_000  # the artifact's MaxSpecCpu
BEST_FIT_MAX_GPU = 8_000  # the artifact's MaxSpecGpu
MAX_SCORE = 100


def best_fit_scores(state: ClusterState, pod: OpenbPod, nodes: IntArray) -> FloatArray:
    """100 × (1 − [½ CPU left ÷ 128 cores + ½ milli-GPUs left ÷ 8 GPUs]) of ``nodes``, truncated: tightest highest."""
    cpu_left = (state.cpu_free[nodes] - pod.cpu_milli) / BEST_FIT_MAX_CPU * 0.5
    gpu_left = (state.total_free[nodes] - pod.gpu_milli_total) / BEST_FIT_MAX_GPU * 0.5
    scores: FloatArray = np.trunc((1.0 - (cpu_left + gpu_left)) * MAX_SCORE)
    return scores


def normalized(scores: FloatArray) -> FloatArray:
    """The plugin's ``NormalizeScore`` over the scored nodes: (s − lo) × 100 ÷ (hi − lo) in integers, 0 if all equal.

    It keeps the order: integer scores 0–100 span at most 100, so any two differ by a point or more after it.
    """
    values = scores.astype(np.int64)
    low, high = int(values.min()), int(values.max())
    spread = max(high - low, 1)  # all equal: every score becomes 0
    result: FloatArray = ((values - low) * MAX_SCORE // spread).astype(np.float64)
    return result


class FgdScores:
    """FGD's score of every node for a pod: 100 × sigmoid((F_before − F_after) ÷ 1000), truncated.

    ``raw=True`` keeps the fraction (for tie-breaks that must not reorder FGD).
    """

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._cache: dict[tuple[int, int, int], tuple[int, FloatArray]] = {}
        self._all = np.arange(len(state.nodes))

    def __call__(self, pod: OpenbPod) -> FloatArray:
        """Nodes × GPU choices."""
        state = self.state
        key = (pod.cpu_milli, pod.num_gpu, pod.gpu_milli)
        cached = self._cache.get(key)
        if cached is None:
            scores = self._compute(pod, self._all)
        else:
            at, scores = cached
            if at != state.placements:
                stale = np.flatnonzero(state.changed_at > at)
                if len(stale):
                    scores[stale] = self._compute(pod, stale)
        self._cache[key] = (state.placements, scores)
        return scores

    def _compute(self, pod: OpenbPod, nodes: IntArray) -> FloatArray:
        state = self.state
        after = state.fragmentation_after(pod, nodes)
        delta = (state.frag[nodes][:, None] - after) / state.types.weight.sum() / 1000
        scores: FloatArray = np.floor(1.0 / (1.0 + np.exp(-np.clip(delta, -700, 700))) * MAX_SCORE)
        if is_shared(pod):
            scores = np.where(after < 0, -np.inf, scores)
        return scores
