"""Packing mode: the FGD paper's experiment (pods arrive, never leave, fill the cluster to 130 %).

The method is the paper artifact's (``hkust-adsl/kubernetes-scheduler-simulator``,
a Go simulator on the Kubernetes scheduler framework), detail by detail:

- arrivals (``SortClusterPods``, ``TunePodsByNodeTotalResource``): the pod list
  sorted by name and shuffled with the seed, then copies drawn from it appended
  until the next one's per-GPU request would pass 130 % of capacity (a list
  above 130 % loses random pods instead);
- ties (``syncClusterResourceList``): the artifact renames node ``i`` (in name
  order) to ``f"{perm[i]:04d}-{name}"`` with ``perm`` a seeded permutation, and
  the scheduler breaks ties by the smallest name: ties follow that permutation;
- reported (``merge_alloc_discrete``): the allocation at x % arrived is the mean
  over every arrival whose arrived demand rounds to x %.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tuxai.errors import UsageError
from tuxai.sim.cluster import WHOLE, ClusterState, FloatArray, IntArray, is_shared, typical_pods
from tuxai.sim.openb import OpenbNode, OpenbPod
from tuxai.sim.scores import FgdScores, best_fit_scores, normalized
from tuxai.sim.tuxai_policy import TuxaiScores

INFLATION = 1.3
PACKING_POLICIES = ("random", "best-fit", "fgd", "tuxai")
CURVE_POINTS = 131  # 0 … 130 % arrived


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


def inflate(pods: tuple[OpenbPod, ...], capacity_milli: int, rng: random.Random) -> list[OpenbPod]:
    """The arrival sequence: the list shuffled, then copies appended up to 130 % of capacity (or pods dropped)."""
    ordered = sorted(pods, key=lambda p: p.name)
    sequence = list(ordered)
    rng.shuffle(sequence)
    target = INFLATION * capacity_milli
    total = sum(p.gpu_milli_total for p in sequence)
    while total > target and sequence:
        total -= sequence.pop(rng.randrange(len(sequence))).gpu_milli_total
    while total < target:
        pod = ordered[rng.randrange(len(ordered))]
        if total + pod.gpu_milli > target:  # the artifact compares the per-GPU request here
            break
        sequence.append(pod)
        total += pod.gpu_milli_total
    return sequence


def pick(scores: FloatArray, rank: IntArray) -> int:
    """The position of the highest score; ties go to the lowest rank (the artifact's smallest node name)."""
    ties = np.flatnonzero(scores == scores.max())
    return int(ties[np.argmin(rank[ties])]) if len(ties) > 1 else int(ties[0])


class Chooser:
    """One policy on one replay's cluster: the node and GPUs each arriving pod gets.

    ``rank`` orders the nodes for ties (lowest first); ``rng`` draws random fit's nodes and GPUs.
    """

    def __init__(self, policy: str, state: ClusterState, rng: random.Random, rank: IntArray) -> None:
        self.name, self.state, self.rng, self.rank = policy, state, rng, rank
        self.fgd = FgdScores(state)
        self.tuxai = TuxaiScores(state, self.fgd) if policy == "tuxai" else None

    def choose(self, pod: OpenbPod) -> tuple[int, list[int]] | None:
        """(node index, GPU indices), or None when no node can take the pod."""
        state = self.state
        candidates = state.eligible(pod)
        if len(candidates) == 0:
            return None
        shared = is_shared(pod)
        if self.name == "random":
            node = int(candidates[self.rng.randrange(len(candidates))])
            if not shared:
                return node, state.whole_gpus(node, pod.num_gpu)
            fitting = np.flatnonzero(state.exists[node] & (state.gpu_free[node] >= pod.gpu_milli))
            return node, [int(fitting[self.rng.randrange(len(fitting))])]  # the artifact's random GPU, too
        if self.name == "best-fit":
            scores = normalized(best_fit_scores(state, pod, candidates))
            node = int(candidates[pick(scores, self.rank[candidates])])
            gpus = [state.tightest_gpu(node, pod.gpu_milli)] if shared else state.whole_gpus(node, pod.num_gpu)
            return node, gpus
        scores = self.fgd(pod)[candidates] if self.tuxai is None else self.tuxai(pod, candidates)
        at = pick(scores.max(axis=1), self.rank[candidates])
        node = int(candidates[at])
        gpus = [int(np.argmax(scores[at]))] if shared else state.whole_gpus(node, pod.num_gpu)
        return node, gpus


def _curve(arrived: FloatArray, values: FloatArray) -> tuple[float, ...]:
    """At each whole percent x arrived, the mean of ``values`` over arrivals whose arrived share rounds to x."""
    percent = np.round(arrived * 100)
    points: list[float] = []
    for x in range(CURVE_POINTS):
        chosen = percent == x
        if not chosen.any():
            chosen = np.abs(percent - x) <= 1
        points.append(float(values[chosen].mean()) if chosen.any() else (points[-1] if points else 0.0))
    return tuple(points)


def replay_packing(
    nodes: tuple[OpenbNode, ...],
    pods: tuple[OpenbPod, ...],
    policy: str,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    until_percent: int = CURVE_POINTS - 1,
) -> PackingResult:
    """Replay the seeded arrival sequence on an empty cluster with one policy.

    ``until_percent`` < 130 stops once the arrived demand rounds past it (the
    curve's later points then repeat the last one): enough for the 100 % point.

    Raises:
        UsageError: an unknown policy, or no GPUs to pack.
    """
    if policy not in PACKING_POLICIES:
        raise UsageError(f"no packing policy {policy!r}", hint=f"choose from {', '.join(PACKING_POLICIES)}")
    state = ClusterState(nodes, typical_pods(pods, nodes), fragmentation=policy in ("fgd", "tuxai"))
    if state.capacity_milli == 0 or not any(p.gpu_milli_total for p in pods):
        raise UsageError("packing needs GPUs in the node list and GPU requests in the pod list", hint="check the CSVs")
    rng = random.Random(seed)
    sequence = inflate(pods, state.capacity_milli, rng)
    rank = np.array(rng.sample(range(len(nodes)), len(nodes)), dtype=np.int64)
    chooser = Chooser(policy, state, rng, rank)
    capacity = state.capacity_milli
    arrived = np.cumsum([p.gpu_milli_total for p in sequence]) / capacity
    stop = int(np.searchsorted(np.round(arrived * 100), until_percent, side="right"))
    sequence, arrived = sequence[:stop], arrived[:stop]
    allocated = np.zeros(len(sequence))
    failed = 0
    for number, pod in enumerate(sequence):
        choice = chooser.choose(pod)
        if choice is None:
            failed += 1
        else:
            state.place(pod, *choice)
        allocated[number] = state.allocated_milli / capacity
        if progress is not None:
            progress(number + 1, len(sequence))
    unallocated = (1 - allocated) * capacity / WHOLE
    return PackingResult(policy, seed, len(sequence), failed, _curve(arrived, allocated), _curve(arrived, unallocated))
