"""lscpu -J, numactl --hardware and hl-smi on real captures."""

from __future__ import annotations

import pytest

from tests.conftest import fixture_text
from tuxai.errors import ToolOutputError
from tuxai.hardware.hl_smi import parse_hl_smi
from tuxai.hardware.lscpu import parse_lscpu_json
from tuxai.hardware.numactl import parse_numactl_hardware
from tuxai.model.cpu import format_cpulist, parse_cpulist
from tuxai.model.gpu import Vendor

LSCPU = "lscpu/util-linux-dump-x86_64-epyc_7451.lscpu-J.json"
NUMACTL = "numactl/asus-esc8000a-e12-genoa-2node.numactl-hardware.txt"
HLSMI = "hl-smi/gaudi2-hl225-x8-drv1.21.1.hl-smi-table.txt"


def test_lscpu_epyc_7451() -> None:
    report = parse_lscpu_json(fixture_text(LSCPU))
    assert report.model == "AMD EPYC 7451 24-Core Processor"
    assert report.cpus == 96
    assert report.online_cpus == tuple(range(96))
    assert (report.sockets, report.cores_per_socket, report.threads_per_core) == (2, 24, 2)
    assert report.max_mhz == 2300.0
    assert sorted(report.numa_cpus) == list(range(8))
    assert report.numa_cpus[0] == parse_cpulist("0-5,48-53")
    assert report.numa_cpus[7] == parse_cpulist("42-47,90-95")


def test_numactl_genoa_two_nodes() -> None:
    nodes = parse_numactl_hardware(fixture_text(NUMACTL))
    assert [n.id for n in nodes] == [0, 1]
    assert nodes[0].cpus == tuple(range(32)) and nodes[1].cpus == tuple(range(32, 64))
    assert nodes[0].memory_total_bytes == 193129 * 1024**2
    assert nodes[1].memory_total_bytes == 193477 * 1024**2
    assert nodes[0].distances == (10, 32) and nodes[1].distances == (32, 10)


def test_hl_smi_gaudi2_table() -> None:
    report = parse_hl_smi(fixture_text(HLSMI))
    assert report.driver_version == "1.21.1-bfcec49"
    assert report.tool_version == "hl-1.21.1-fw-59.2.3.0"
    assert len(report.gpus) == 8
    assert [g.pci_bus_id for g in report.gpus] == [
        "0000:33:00.0",
        "0000:34:00.0",
        "0000:4e:00.0",
        "0000:9a:00.0",
        "0000:9b:00.0",
        "0000:b3:00.0",
        "0000:b4:00.0",
        "0000:4d:00.0",
    ]
    for gpu in report.gpus:
        assert gpu.vendor is Vendor.INTEL_GAUDI
        assert gpu.name == "HL-225"
        assert gpu.memory_total_bytes == 98304 * 1024**2
        assert gpu.power_limit_w == 600.0
    assert [g.ecc.volatile_uncorrectable for g in report.gpus] == [21, 0, 0, 0, 0, 0, 176, 0]
    assert report.gpus[0].utilization_pct == 88.0


@pytest.mark.parametrize(
    ("parser", "text", "tool", "problem"),
    [
        (parse_lscpu_json, '{"lscpu": [{"field": "CPU(s):"', "lscpu -J", "truncated"),
        (parse_lscpu_json, '{"cpus": 4}', "lscpu -J", '"lscpu" list'),
        (parse_numactl_hardware, "available: 0 nodes", "numactl --hardware", "no 'node N cpus:'"),
        (parse_hl_smi, "| HL-SMI Version: hl-1.21.1 |\n", "hl-smi", "no device rows"),
    ],
)
def test_malformed_cpu_tool_output(parser: object, text: str, tool: str, problem: str) -> None:
    assert callable(parser)
    with pytest.raises(ToolOutputError) as caught:
        parser(text)
    assert caught.value.tool == tool and problem in caught.value.problem


def test_hl_smi_truncated_after_a_device_row() -> None:
    lines = fixture_text(HLSMI).splitlines()
    first_device = next(i for i, line in enumerate(lines) if "HL-225" in line)
    with pytest.raises(ToolOutputError, match="no usage line"):
        parse_hl_smi("\n".join(lines[: first_device + 1]))


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-2,8", (0, 1, 2, 8)), ("5", (5,)), ("", ()), ("0-1,1-3", (0, 1, 2, 3)), ("3 4", (3, 4))],
)
def test_cpulist_round_trip(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpulist(text) == cpus
    assert parse_cpulist(format_cpulist(cpus)) == cpus
