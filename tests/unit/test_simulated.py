"""Simulated inventories: the shipped examples, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from tuxai.errors import InventoryError
from tuxai.hardware.simulated import inventory_from_yaml, load_inventory_file
from tuxai.model.gpu import Vendor
from tuxai.model.links import LinkKind

EXAMPLES = REPO / "examples" / "inventories"


def test_dgx_a100_example() -> None:
    inventory = load_inventory_file(EXAMPLES / "dgx-a100.yaml")
    assert inventory.source.startswith("simulated:")
    assert len(inventory.gpus) == 8
    assert {g.name for g in inventory.gpus} == {"NVIDIA A100-SXM4-80GB"}
    assert all(g.memory_total_bytes == 80 * 1024**3 for g in inventory.gpus)
    assert len({g.uuid for g in inventory.gpus}) == 8
    assert [g.numa_node for g in inventory.gpus] == [3, 3, 1, 1, 7, 7, 5, 5]
    assert inventory.cpu.sockets == 2 and len(inventory.cpu.numa_nodes) == 8 and inventory.cpu.logical_cpus == 256
    mig = inventory.gpus[0].mig_devices
    assert inventory.gpus[0].mig_enabled and len(mig) == 7
    assert {m.profile for m in mig} == {"1g.10gb"} and all(m.uuid and m.uuid.startswith("MIG-") for m in mig)
    assert all(m.sm_count == 14 for m in mig)
    assert not inventory.gpus[1].mig_enabled
    for a in range(8):
        for b in range(8):
            assert inventory.links.between(a, b).label == ("X" if a == b else "NV12")
    # GPUs on NUMA node 3 get the CPUs of node 3.
    assert inventory.cpu.node(3) is not None
    assert len(inventory.cpu.node(3).cpus) == 32  # type: ignore[union-attr]


def test_workstation_example_uses_the_real_topology() -> None:
    inventory = load_inventory_file(EXAMPLES / "rtx6000ada-workstation.yaml")
    assert [row[0].label for row in inventory.links.links] == ["X", "NODE", "SYS", "SYS"]
    assert inventory.links.between(2, 3).kind is LinkKind.NODE


def test_mi250x_example() -> None:
    inventory = load_inventory_file(EXAMPLES / "mi250x-node.yaml")
    assert len(inventory.gpus) == 8 and all(g.vendor is Vendor.AMD for g in inventory.gpus)
    assert all(g.gfx_target == "gfx90a" and g.rocm_version == "6.2" for g in inventory.gpus)
    assert inventory.links.between(0, 7).kind is LinkKind.XGMI


def test_laptop_example_has_no_gpus() -> None:
    inventory = load_inventory_file(EXAMPLES / "laptop-cpu-only.yaml")
    assert inventory.gpus == () and inventory.links.size == 0
    assert inventory.cpu.logical_cpus == 16


def test_uuids_are_stable_across_loads() -> None:
    first = load_inventory_file(EXAMPLES / "dgx-a100.yaml")
    second = load_inventory_file(EXAMPLES / "dgx-a100.yaml")
    assert [g.uuid for g in first.gpus] == [g.uuid for g in second.gpus]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpus: [", "not valid YAML at line"),
        ("- 1\n- 2", "the file must be a mapping"),
        ("gpu: {}", "unknown keys gpu"),
        ("gpus: {model: X, count: eight}", "gpus[0].count must be an integer"),
        ("gpus: {count: 2}", "gpus[0].model must be the product name"),
        ("gpus: {model: X, vendor: intel}", "gpus[0].vendor must be one of"),
        ("gpus: {model: X, memory: lots}", "gpus[0].memory must be a size"),
        ("gpus: {model: X, count: 2, numa: [0]}", "gpus[0].numa must be a NUMA node"),
        ("gpus: {model: X, numa: 4}", "gpus[0].numa must be a NUMA node below 1"),
        ("gpus: {model: X, count: 2, minor_number: [0]}", "gpus[0].minor_number must be a list of 2 distinct"),
        ("gpus: {model: X, count: 2, minor_number: [1, 1]}", "gpus[0].minor_number must be a list of 2 distinct"),
        ("gpus: {model: X, minor_number: -1}", "gpus[0].minor_number must be a list of 1 distinct integers ≥ 0"),
        ("gpus: {model: X, mig: {3: {1g.10gb: 7}}}", "gpus[0].mig must be keyed by GPU index"),
        ("gpus: {model: X, mig: {0: {7g.huge: 1}}}", "unknown MIG profile '7g.huge'"),
        ("cpu: {sockets: 2, numa_nodes: 3}", "cpu.numa_nodes must be a multiple of sockets"),
        ("gpus: {model: X, count: 2}\nlinks: FAST", "links must be NV<n>, XGMI or pcie"),
        ('gpus: {model: X, count: 3}\ntopology: "GPU0 GPU1\\nGPU0 X NV1\\nGPU1 NV1 X"', "topology has 2 GPUs"),
    ],
)
def test_bad_inventory_names_the_field(text: str, message: str) -> None:
    with pytest.raises(InventoryError) as caught:
        inventory_from_yaml(text, "bad.yaml")
    assert message in caught.value.message
    assert caught.value.message.startswith("bad.yaml")
    assert "\n" not in caught.value.message
    assert "docs/inventory.md" in caught.value.hint or "known keys" in caught.value.hint


def test_minor_numbers_name_the_device_files() -> None:
    """The N of /dev/nvidiaN is not always the index: a simulated box says it, as nvidia-smi does (VM tier)."""
    inventory = load_inventory_file(REPO / "tests/vm/guest/two-gpu-vm.yaml")
    assert [(g.index, g.minor_number) for g in inventory.gpus] == [(0, 0), (1, 1)]
    swapped = inventory_from_yaml("gpus: {model: NVIDIA L4, count: 2, minor_number: [3, 2]}")
    assert [g.minor_number for g in swapped.gpus] == [3, 2]
    assert [g.minor_number for g in load_inventory_file(EXAMPLES / "two-gpu-box.yaml").gpus] == [None, None]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory file"):
        load_inventory_file(tmp_path / "nope.yaml")
