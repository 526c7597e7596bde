"""Placement groups kept for the next job on the same GPUs (issue 15's bench): kept ``linger_s`` after their
gang ended, then removed at the daemon's next read of the nodes; a group without GPUs removed at once.
Ray is a stand-in here (its ``util`` calls recorded); the tier runs the real groups (test_ray_executor)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.unit.test_gang_admission import _node
from tuxai.cluster.ray_nodes import ClusterView
from tuxai.daemon.cluster import RayNodes
from tuxai.executor.ray_groups import GroupPool, pool_name
from tuxai.scheduler.snapshot import Node


class StandInRay:
    """``ray.util``'s named groups: looked up by name, removed (recorded)."""

    def __init__(self, *names: str) -> None:
        self.names, self.removed = set(names), []
        self.util = SimpleNamespace(get_placement_group=self._get, remove_placement_group=self._remove)

    def _get(self, name: str) -> str:
        if name not in self.names:
            raise ValueError(f"Failed to look up placement group with name: {name}")
        return name

    def _remove(self, group: Any) -> None:
        self.names.discard(group)
        self.removed.append(group)


def test_E15_an_ended_gangs_group_is_kept_linger_s_then_removed_and_one_without_gpus_at_once() -> None:
    kept = pool_name([{"GPU": 1.0, "tuxai_gpu_GPU-a": 1.0}], "STRICT_PACK")
    assert kept is not None
    now = [100.0]
    pool, ray = GroupPool(linger_s=10.0, clock=lambda: now[0]), StandInRay(kept, "tuxai-0123456789abcdef")
    pool.release(ray, kept, keep=True, holder="tuxai-a")
    now[0] += 9.0
    pool.sweep(ray)
    assert ray.removed == [] and kept in pool.idle  # the next job on GPU-a may take it as it is
    own = "tuxai-0123456789abcdef"
    pool.release(ray, own, keep=True, holder=own)  # a CPU-only job's own group: never kept
    assert ray.removed == ["tuxai-0123456789abcdef"]
    now[0] += 1.0
    pool.sweep(ray)
    assert ray.removed == ["tuxai-0123456789abcdef", kept] and not pool.idle  # Ray's GPUs back to Ray


def test_T5_a_late_release_never_removes_the_group_another_attempt_took() -> None:
    bundles = [{"GPU": 1.0, "tuxai_gpu_GPU-a": 1.0}]
    kept = pool_name(bundles, "STRICT_PACK")
    assert kept is not None
    pool, ray = GroupPool(linger_s=10.0), StandInRay(kept)
    assert pool.acquire(ray, bundles, "STRICT_PACK", "tuxai-a") == (kept, kept)  # attempt a's gang
    pool.release(ray, kept, keep=True, holder="tuxai-a")  # a ended: kept for the next job on GPU-a
    assert pool.acquire(ray, bundles, "STRICT_PACK", "tuxai-b") == (kept, kept)  # b takes it as it is
    pool.release(ray, kept, keep=False, holder="tuxai-a")  # a's kill_lost, late
    assert ray.removed == [] and kept in ray.names  # b's gang keeps its GPUs
    pool.release(ray, kept, keep=False, holder="tuxai-b")  # b's own end removes it
    assert ray.removed == [kept] and not pool.held


class Listed(ClusterView):
    """Ray's nodes, as given."""

    def __init__(self, *nodes: Node) -> None:
        super().__init__("127.0.0.2:6379")
        self.listed = nodes

    def refresh(self) -> tuple[Node, ...]:
        """The nodes, as given."""
        return self.listed


def test_E15_each_good_read_of_the_nodes_sweeps_the_idle_groups() -> None:
    swept: list[int] = []
    nodes = RayNodes(Listed(_node("127.0.0.3", 2)), refresh_s=0.0, after_read=lambda: swept.append(1))
    nodes.nodes()
    nodes.nodes()
    assert len(swept) == 2  # the daemon reads the nodes every few seconds, jobs or none: idle groups go
