"""The Ray cluster read into the scheduler's snapshot: Ray's nodes, each with the inventory probed on it (issue 15)."""

from __future__ import annotations

import time

import pytest

from tests.ray.cluster import LocalRayCluster
from tuxai.cluster.ray_nodes import GPU_RESOURCE_PREFIX, ClusterView, cluster_nodes, import_ray
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.resources import Request
from tuxai.scheduler.admission import gang_rejection

# The first test also starts the cluster (70 s seen at load 13 on 2 cores) and the last one stops it.
pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


def test_a_head_and_two_workers_each_on_its_own_loopback_address(ray_cluster: LocalRayCluster) -> None:
    ray = ClusterView(ray_cluster.address).connect()
    nodes = {n["NodeManagerAddress"]: n for n in ray.nodes() if n["Alive"]}
    assert sorted(nodes) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for address in ("127.0.0.3", "127.0.0.4"):
        resources = nodes[address]["Resources"]
        assert resources["GPU"] == 2.0
        assert len([k for k in resources if k.startswith(GPU_RESOURCE_PREFIX)]) == 2
    assert "GPU" not in nodes["127.0.0.2"]["Resources"]


def test_each_node_answers_with_its_own_inventory(ray_cluster: LocalRayCluster) -> None:
    nodes = {n.name: n for n in cluster_nodes(ray_cluster.address)}
    assert sorted(nodes) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for node in ray_cluster.nodes:
        expected = load_inventory_file(node.inventory)
        got = nodes[node.ip].inventory
        # The file is only in that node's environment (not this process's): the probe ran there.
        assert got.host.hostname == node.name
        assert got.gpus == expected.gpus  # UUIDs, MIG state and instances, NUMA node, PCIe: field by field
        assert got.links == expected.links
        assert got.cpu.numa_nodes == expected.cpu.numa_nodes
        assert got.problems == ()  # Ray accounts for every GPU the node has
    workers = [nodes["127.0.0.3"].inventory, nodes["127.0.0.4"].inventory]
    uuids = [g.uuid for inventory in workers for g in inventory.gpus]
    assert len(uuids) == 4 and len(set(uuids)) == 4
    assert nodes["127.0.0.2"].inventory.gpus == ()


def test_rays_accounting_follows_tuxais_gpu_choice(ray_cluster: LocalRayCluster) -> None:
    view = ClusterView(ray_cluster.address)
    nodes = {n.name: n for n in view.refresh()}
    ray = view.connect()

    @ray.remote(num_cpus=0)
    def where() -> str:
        return str(ray.get_runtime_context().get_node_id())

    ids = {n.address: n.node_id for n in view.ray_nodes if n.alive}
    for address in ("127.0.0.3", "127.0.0.4"):
        uuid = nodes[address].inventory.gpus[1].uuid
        asked = where.options(resources={f"{GPU_RESOURCE_PREFIX}{uuid}": 1}).remote()
        assert ray.get(asked, timeout=30) == ids[address]


def test_a_gang_the_cluster_can_never_hold_is_refused_with_its_shape(ray_cluster: LocalRayCluster) -> None:
    began = time.monotonic()
    nodes = cluster_nodes(ray_cluster.address)
    assert gang_rejection(Request(gpus=2), 3, nodes) == (
        "asks 3 nodes × 2 GPUs; the cluster has 2 nodes with 2 GPUs each, 1 node with no GPU "
        "(2 of them can hold one node's share: 127.0.0.3, 127.0.0.4)"
    )
    assert gang_rejection(Request(gpus=2), 2, nodes) is None
    assert time.monotonic() - began < 5.0


# A node leaving and joining again: tests/ray/test_ray_executor.py (one worker restart for the tier).


def test_ray_is_imported_only_when_a_cluster_is_asked() -> None:
    import subprocess
    import sys

    code = "import sys, tuxai.cluster.ray_nodes, tuxai.scheduler.admission; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    assert import_ray().__name__ == "ray"
