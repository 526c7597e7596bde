"""A gang that no set of nodes can ever hold is refused with the cluster's shape (issue 15)."""

from __future__ import annotations

from tests.scheduler_helpers import DGX, WORKSTATION
from tuxai.hardware.simulated import inventory_from_yaml
from tuxai.model.resources import Request
from tuxai.scheduler.admission import gang_rejection
from tuxai.scheduler.snapshot import Node


def _node(name: str, gpus: int, cores: int = 4) -> Node:
    gpu_text = f"gpus: {{model: NVIDIA A100-SXM4-80GB, count: {gpus}}}\nlinks: NV12\n" if gpus else ""
    text = f"host: {{hostname: {name}, memory: 16GiB}}\ncpu: {{cores_per_socket: {cores}}}\n{gpu_text}"
    return Node(name, inventory_from_yaml(text, name))


TWO_BY_TWO = (_node("w1", 2), _node("w2", 2))


def test_three_nodes_asked_of_two_names_the_cluster_shape() -> None:
    reason = gang_rejection(Request(gpus=2), 3, TWO_BY_TWO)
    assert reason == "asks 3 nodes × 2 GPUs; the cluster has 2 nodes with 2 GPUs each"


def test_a_gang_that_fits_is_not_refused() -> None:
    assert gang_rejection(Request(gpus=2), 2, TWO_BY_TWO) is None
    assert gang_rejection(Request(gpus=1), 2, TWO_BY_TWO) is None
    assert gang_rejection(Request(gpus=0, cpus=1), 3, (*TWO_BY_TWO, _node("head", 0, 1))) is None


def test_a_share_too_big_for_every_node_says_why_one_node_cannot_hold_it() -> None:
    reason = gang_rejection(Request(gpus=4), 2, TWO_BY_TWO)
    assert reason is not None
    assert reason.startswith("asks 2 nodes × 4 GPUs; the cluster has 2 nodes with 2 GPUs each; no node can hold")
    assert "asks for 4 whole GPUs on one node" in reason


def test_nodes_that_cannot_hold_a_share_do_not_count_and_the_able_ones_are_named() -> None:
    nodes = (_node("big", 4), _node("w1", 2), _node("head", 0, 1))
    reason = gang_rejection(Request(gpus=4, cpus=2), 2, nodes)
    assert reason == (
        "asks 2 nodes × 4 GPUs, 2 CPUs; the cluster has 1 node with 4 GPUs, 1 node with 2 GPUs, "
        "1 node with no GPU (1 of them can hold one node's share: big)"
    )


def test_memory_is_part_of_the_share_and_of_the_words() -> None:
    reason = gang_rejection(Request(gpus=1, memory_bytes=64 * 2**30), 2, TWO_BY_TWO)
    assert reason is not None
    assert reason.startswith("asks 2 nodes × 1 GPU, 64.0 GiB; the cluster has 2 nodes with 2 GPUs each")
    assert "asks for 64.0 GiB of memory" in reason


def test_real_inventories_mixed() -> None:
    assert gang_rejection(Request(gpus=2), 2, (DGX, WORKSTATION)) is None
    reason = gang_rejection(Request(gpus=2), 3, (DGX, WORKSTATION))
    assert reason is not None and reason.startswith("asks 3 nodes × 2 GPUs; the cluster has 1 node with 8 GPUs")


def test_no_node_at_all() -> None:
    assert gang_rejection(Request(gpus=1), 2, ()) == "asks 2 nodes × 1 GPU; the cluster has no node"
