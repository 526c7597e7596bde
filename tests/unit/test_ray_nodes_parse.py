"""Ray's node list read as tuxai's (pure: no Ray needed); Ray's GPU accounting against a node's inventory."""

from __future__ import annotations

from tuxai.cluster.ray_nodes import RayNode, accounting_problems, gpu_resources, parse_ray_nodes
from tuxai.hardware.simulated import inventory_from_yaml

INVENTORY = inventory_from_yaml(
    "host: {hostname: w1, memory: 4GiB}\ncpu: {cores_per_socket: 1}\n"
    "gpus: {model: NVIDIA A100-SXM4-80GB, count: 2}\nlinks: NV12\n"
)
UUIDS = tuple(g.uuid or "" for g in INVENTORY.gpus)


def test_ray_nodes_are_read_with_their_gpu_resources_and_the_dead_ones_kept() -> None:
    listed = [
        {
            "NodeID": "aa",
            "NodeManagerAddress": "127.0.0.3",
            "Alive": True,
            "Resources": {"CPU": 1.0, "memory": 2.5e9, "GPU": 2.0, f"tuxai_gpu_{UUIDS[1]}": 1.0, "node:127.0.0.3": 1.0},
        },
        {"NodeID": "bb", "NodeManagerAddress": "127.0.0.4", "Alive": False, "Resources": {}},
    ]
    assert parse_ray_nodes(listed) == (
        RayNode("aa", "127.0.0.3", 1.0, 2_500_000_000, True, 2.0, (UUIDS[1],)),
        RayNode("bb", "127.0.0.4", 0.0, 0, False),
    )


def test_each_gpu_is_one_custom_resource() -> None:
    assert gpu_resources(INVENTORY) == {f"tuxai_gpu_{UUIDS[0]}": 1.0, f"tuxai_gpu_{UUIDS[1]}": 1.0}


def test_a_gpu_ray_does_not_account_for_is_a_problem_of_the_node() -> None:
    agree = RayNode("aa", "127.0.0.3", 1.0, 0, True, 2.0, tuple(sorted(UUIDS)))
    assert accounting_problems(agree, INVENTORY) == ()
    short = RayNode("aa", "127.0.0.3", 1.0, 0, True, 2.0, (UUIDS[0], "GPU-elsewhere"))
    missing, unknown = accounting_problems(short, INVENTORY)
    assert missing.severity == "error" and UUIDS[1] in missing.problem and "127.0.0.3" in missing.problem
    assert unknown.severity == "warn" and "GPU-elsewhere" in unknown.problem
