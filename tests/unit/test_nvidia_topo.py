"""`nvidia-smi topo -m` parser on the two real captures (tabs, and spaces)."""

from __future__ import annotations

import pytest

from tests.conftest import fixture_text
from tuxai.errors import ToolOutputError
from tuxai.hardware.nvidia_topo import parse_link, parse_nvidia_topo
from tuxai.model.cpu import parse_cpulist
from tuxai.model.links import LinkKind

A100 = "nvidia-smi-topo/a100-sxm4-40gb-x8-nv12-nic10-8numa.topo.txt"
ADA = "nvidia-smi-topo/rtx6000ada-x4-pcie-nic4-2numa.topo.txt"


def test_a100_nvlink_matrix_with_tabs() -> None:
    topo = parse_nvidia_topo(fixture_text(A100))
    assert topo.gpu_names == tuple(f"GPU{i}" for i in range(8))
    assert topo.links.size == 8
    for a in range(8):
        for b in range(8):
            link = topo.links.between(a, b)
            if a == b:
                assert link.kind is LinkKind.SELF
            else:
                assert (link.kind, link.nvlinks, link.label) == (LinkKind.NVLINK, 12, "NV12")
    assert topo.nic_names == tuple(f"mlx5_{i}" for i in range(10))
    # GPU0 and GPU1 share a PCIe switch with NIC0/NIC1 (PXB), the rest are SYS.
    assert [link.label for link in topo.nic_links[0]] == ["PXB", "PXB"] + ["SYS"] * 8
    assert [link.label for link in topo.nic_links[7]] == ["SYS"] * 6 + ["PXB", "PXB", "SYS", "SYS"]
    assert [a.numa_nodes for a in topo.affinity] == [(3,), (3,), (1,), (1,), (7,), (7,), (5,), (5,)]
    assert topo.affinity[0].cpus == parse_cpulist("48-63,176-191")
    assert topo.affinity[4].cpus == parse_cpulist("112-127,240-255")
    assert topo.affinity[6].cpus == parse_cpulist("80-95,208-223")


def test_ada_pcie_matrix_with_spaces_and_gpu_numa_column() -> None:
    topo = parse_nvidia_topo(fixture_text(ADA))
    assert topo.links.size == 4
    labels = [[link.label for link in row] for row in topo.links.links]
    assert labels == [
        ["X", "NODE", "SYS", "SYS"],
        ["NODE", "X", "SYS", "SYS"],
        ["SYS", "SYS", "X", "NODE"],
        ["SYS", "SYS", "NODE", "X"],
    ]
    assert topo.nic_names == ("mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3")
    assert [link.label for link in topo.nic_links[2]] == ["SYS", "SYS", "NODE", "NODE"]
    assert [a.numa_nodes for a in topo.affinity] == [(0,), (0,), (1,), (1,)]
    assert [a.cpus for a in topo.affinity] == [parse_cpulist("0-31")] * 2 + [parse_cpulist("32-63")] * 2


def test_ansi_escapes_are_stripped() -> None:
    coloured = fixture_text(ADA).replace("NODE", "\x1b[32mNODE\x1b[0m").replace("GPU0", "\x1b[1mGPU0\x1b[0m")
    topo = parse_nvidia_topo(coloured)
    assert topo.links.between(0, 1).kind is LinkKind.NODE
    assert topo.links.size == 4


def test_parse_link_cells() -> None:
    assert parse_link("NV4").nvlinks == 4
    assert parse_link(" X ").kind is LinkKind.SELF
    assert parse_link("PHB").rank > parse_link("PIX").rank
    with pytest.raises(ValueError, match="unknown link"):
        parse_link("QPI")


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda t: "", "no header row"),
        (lambda t: "\n".join(t.splitlines()[:3]), "truncated: no row for GPU2"),
        (lambda t: t.replace(t.splitlines()[2], t.splitlines()[2][:20]), "row GPU1 has 2 cells, expected 8"),
        (lambda t: t.replace("GPU3    SYS     SYS     NODE", "GPU3    SYS     WAT     NODE"), "unknown link"),
    ],
)
def test_malformed_topology(mangle: object, problem: str) -> None:
    assert callable(mangle)
    with pytest.raises(ToolOutputError) as caught:
        parse_nvidia_topo(mangle(fixture_text(ADA)))
    assert caught.value.tool == "nvidia-smi topo -m"
    assert problem in caught.value.problem
