"""Packing mode: the FGD paper's experiment (pods arrive, never leave, fill the cluster to 130 %).

Facts of the method are in ``shared/reference/fgd-packing.md``. Policies score
every eligible node; the highest integer score wins and ties go to the
smallest node name, as the paper's artifact does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tuxai.errors import UsageError
from tuxai.sim.cluster import WHOLE, ClusterState, FloatArray, IntArray, typical_pods
from tuxai.sim.openb import OpenbNode, OpenbPod

INFLATION = 1.3
BEST_FIT_MAX_CPU = 128_000
BEST_FIT_MAX_GPU = 8_000
PACKING_POLICIES = ("random", "best-fit", "fgd", "tuxai")


@dataclass(frozen=True)
class PackingResult:
    """One policy's replay: the allocation curve and the headline numbers."""

    policy: str
    seed: int
    jobs: int
    failed: int
    curve: tuple[float, ...]  # allocated share at 0, 1, …, 130 % arrived
    unallocated_gpus_curve: tuple[float, ...]  # capacity left unallocated, in GPUs, at the same steps
    allocated_gpu_share: float = field(init=False)
    unallocated_gpus: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allocated_gpu_share", self.curve[100])
        object.__setattr__(self, "unallocated_gpus", self.unallocated_gpus_curve[100])


def inflate(pods: tuple[OpenbPod, ...], capacity_milli: int, seed: int) -> list[OpenbPod]:
    """The arrival sequence: copies drawn with the seed until GPU requests reach 130 % of capacity, shuffled."""
    rng = random.Random(seed)
    target = INFLATION * capacity_milli
    sequence = list(pods)
    total = sum(p.gpu_milli_total for p in sequence)
    while total < target:
        pod = rng.choice(pods)
        sequence.append(pod)
        total += pod.gpu_milli_total
    while sequence and total - sequence[-1].gpu_milli_total >= target:
        total -= sequence.pop().gpu_milli_total
    rng.shuffle(sequence)
    return sequence


def _best_fit_scores(state: ClusterState, pod: OpenbPod, nodes: IntArray) -> FloatArray:
    cpu_left = (state.cpu_free[nodes] - pod.cpu_milli) / BEST_FIT_MAX_CPU
    gpu_left = (state.gpu_free[nodes].sum(axis=1) - pod.gpu_milli_total) / BEST_FIT_MAX_GPU
    scores: FloatArray = np.floor(100 * (1 - (0.5 * cpu_left + 0.5 * gpu_left)))
    return scores[:, None]


def _fgd_scores(state: ClusterState, pod: OpenbPod, nodes: IntArray, exact: bool = False) -> FloatArray:
    """100 × sigmoid((F_before − F_after) / 1000), truncated unless ``exact``; nodes × GPU choices."""
    after = state.fragmentation_after(pod, nodes)
    delta = (state.frag[nodes][:, None] - after) / 1000
    raw: FloatArray = 100 / (1 + np.exp(-np.clip(delta, -50, 50)))
    raw = np.where(np.isinf(after), -np.inf, raw)
    return raw if exact else np.floor(raw)


def _tuxai_scores(state: ClusterState, pod: OpenbPod, nodes: IntArray) -> FloatArray:
    """FGD's score, with its many ties broken by consolidation instead of by node name.

    Among nodes whose fragmentation grows equally (the same integer FGD score),
    prefer a node already in use (keep empty nodes empty for large pods), then
    the node left tightest (best fit); among a node's GPUs for a shared pod, the
    tightest one. Each tie-break term stays below 1, so FGD's order is kept.
    """
    scores = _fgd_scores(state, pod, nodes)
    used = state.gpu_free[nodes].sum(axis=1) < state.exists[nodes].sum(axis=1) * WHOLE
    scores = scores + 0.5 * used[:, None] + _best_fit_scores(state, pod, nodes) / 1000
    if scores.shape[1] > 1:
        room = np.where(np.isfinite(scores), state.gpu_free[nodes], WHOLE)
        scores = scores - room / 1e7
    result: FloatArray = scores
    return result


def _choose(state: ClusterState, pod: OpenbPod, policy: str, rng: random.Random) -> tuple[int, list[int]] | None:
    candidates = np.flatnonzero(state.eligible(pod))
    if len(candidates) == 0:
        return None
    shared = pod.num_gpu == 1 and pod.gpu_milli < WHOLE
    if policy == "random":
        node = int(candidates[rng.randrange(len(candidates))])
        gpus = []
        if shared:  # a random GPU that fits, too (the artifact's random-fit: 86.3 % over seeds 42-51)
            fitting = np.flatnonzero(state.exists[node] & (state.gpu_free[node] >= pod.gpu_milli))
            gpus = [int(fitting[rng.randrange(len(fitting))])]
    else:
        scorer: Callable[[ClusterState, OpenbPod, IntArray], FloatArray] = {
            "best-fit": _best_fit_scores,
            "fgd": _fgd_scores,
            "tuxai": _tuxai_scores,
        }[policy]
        scores = scorer(state, pod, candidates)
        best_per_node = scores.max(axis=1)
        pick = int(np.argmax(best_per_node))  # the first maximum: the smallest node name
        node = int(candidates[pick])
        if shared:
            gpu = state.tightest_gpu(node, pod.gpu_milli) if scores.shape[1] == 1 else int(np.argmax(scores[pick]))
            gpus = [gpu]
        else:
            gpus = []
    if not shared and pod.num_gpu:
        gpus = state.whole_gpus(node, pod.num_gpu)
    return node, gpus


def replay_packing(
    nodes: tuple[OpenbNode, ...],
    pods: tuple[OpenbPod, ...],
    policy: str,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> PackingResult:
    """Replay the inflated, shuffled pod sequence on an empty cluster with one policy.

    Raises:
        UsageError: an unknown policy.
    """
    if policy not in PACKING_POLICIES:
        raise UsageError(f"no packing policy {policy!r}", hint=f"choose from {', '.join(PACKING_POLICIES)}")
    state = ClusterState(nodes, typical_pods(pods, nodes))
    if state.capacity_milli == 0 or not any(p.gpu_milli_total for p in pods):
        raise UsageError("packing needs GPUs in the node list and GPU requests in the pod list", hint="check the CSVs")
    sequence = inflate(pods, state.capacity_milli, seed)
    rng = random.Random(seed)
    capacity = state.capacity_milli
    arrived = 0
    failed = 0
    curve: list[float] = []
    unallocated: list[float] = []
    for number, pod in enumerate(sequence):
        choice = _choose(state, pod, policy, rng)
        if choice is None:
            failed += 1
        else:
            state.place(pod, *choice)
        arrived += pod.gpu_milli_total
        while len(curve) <= 130 and arrived >= len(curve) * capacity / 100:
            curve.append(state.allocated_milli / capacity)
            unallocated.append((capacity - state.allocated_milli) / WHOLE)
        if progress is not None:
            progress(number + 1, len(sequence))
    while len(curve) <= 130:  # a list that never reached 130 % keeps its last value
        curve.append(state.allocated_milli / capacity)
        unallocated.append((capacity - state.allocated_milli) / WHOLE)
    return PackingResult(policy, seed, len(sequence), failed, tuple(curve), tuple(unallocated))
