"""A telemetry step's samples of every running gang's ranks (issue 15, review 5): one ``sample(names)`` call
per node for all the ranks it runs, of every job, and one deadline for all the nodes together. A hung node
costs a step ``timeout_s`` once, not ``call_s`` per rank per job; its ranks are left out of that step. The
nodes' launchers are kept between steps: looked up once (``ray.get_actor``), again only after a call failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from tuxai.model.gang import RAY_NAMESPACE

SAMPLE_S = 2.0  # the longest a telemetry step (1 s apart) waits for all the nodes together


def launcher_name(node_id: str) -> str:
    """The launcher actor of a node: one per Ray node (a restarted node is a new one)."""
    return f"tuxai-launcher-{node_id}"


def by_node(gangs: Sequence[tuple[str, Sequence[str]]]) -> dict[str, list[tuple[int, int, str]]]:
    """The ranks of every gang (its group's name, its ranks' node ids in rank order) by node:
    (gang index, rank, rank name) each.

    >>> by_node([("g1", ["a", "b"]), ("g2", ["b"])])
    {'a': [(0, 0, 'g1-r0')], 'b': [(0, 1, 'g1-r1'), (1, 0, 'g2-r0')]}
    """
    nodes: dict[str, list[tuple[int, int, str]]] = {}
    for index, (name, node_ids) in enumerate(gangs):
        for rank, node in enumerate(node_ids):
            nodes.setdefault(node, []).append((index, rank, f"{name}-r{rank}"))
    return nodes


class RankSampling:
    """The kept launchers of the nodes sampled, and how long a step waits for them."""

    def __init__(self, timeout_s: float = SAMPLE_S) -> None:
        """``timeout_s``: the one deadline of a step, for every node together."""
        self.timeout_s = timeout_s
        self._actors: dict[str, Any] = {}  # Ray node id → its launcher's handle

    def _actor(self, ray: ModuleType, node_id: str) -> Any | None:
        if node_id not in self._actors:
            try:
                self._actors[node_id] = ray.get_actor(launcher_name(node_id), namespace=RAY_NAMESPACE)
            except ValueError:
                return None  # no launcher there: the node is gone
        return self._actors[node_id]

    def samples(
        self, ray: ModuleType, gangs: Sequence[tuple[str, Sequence[str]]], sampler: Callable[[], Any]
    ) -> list[list[tuple[int, Any]]]:
        """Each gang's running ranks sampled on their nodes (``executor.ray_node.NodeRunner.sample``):
        (rank, sample) in rank order; a rank whose node did not answer by the deadline is left out."""
        nodes = by_node(gangs)
        calls = {}
        for node, ranks in nodes.items():
            actor = self._actor(ray, node)
            if actor is not None:
                calls[node] = actor.sample.remote([name for _, _, name in ranks], sampler)
        refs = list(calls.values())
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.timeout_s) if refs else ([], [])
        found: list[list[tuple[int, Any]]] = [[] for _ in gangs]
        for node, ref in calls.items():
            if ref not in ready:
                continue
            try:
                answers = ray.get(ref)
            except ray.exceptions.RayError:
                self._actors.pop(node, None)  # looked up again at the next step
                continue
            for (index, rank, _), sample in zip(nodes[node], answers, strict=True):
                if sample is not None:
                    found[index].append((rank, sample))
        return [sorted(ranks, key=lambda pair: pair[0]) for ranks in found]
