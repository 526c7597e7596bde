"""Property tests: damaged tool output gives a ToolOutputError, never another exception."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import fixture_text
from tuxai.errors import ToolOutputError
from tuxai.hardware.amd_smi import parse_amd_smi_static
from tuxai.hardware.hl_smi import parse_hl_smi
from tuxai.hardware.lscpu import parse_lscpu_json
from tuxai.hardware.numactl import parse_numactl_hardware
from tuxai.hardware.nvidia_smi import parse_nvidia_smi_xml
from tuxai.hardware.nvidia_topo import parse_nvidia_topo
from tuxai.hardware.rocm_smi import parse_rocm_smi_json
from tuxai.model.cpu import format_cpulist, parse_cpulist
from tuxai.model.units import format_bytes, parse_bytes

PARSERS: list[tuple[Callable[[str], object], str]] = [
    (parse_nvidia_smi_xml, "nvidia-smi-xml/rtx-a5000-x2-drv590.44.01-v13.xml"),
    (parse_nvidia_smi_xml, "nvidia-smi-xml/tesla-t4-drv515.105.01.xml"),
    (parse_nvidia_topo, "nvidia-smi-topo/a100-sxm4-40gb-x8-nv12-nic10-8numa.topo.txt"),
    (parse_nvidia_topo, "nvidia-smi-topo/rtx6000ada-x4-pcie-nic4-2numa.topo.txt"),
    (parse_rocm_smi_json, "rocm-smi-json/mi100-x6-rocm5.7.1-drv6.2.4.rocm-smi-json.json"),
    (parse_amd_smi_static, "amd-smi-json/strix-halo-radeon8060s-static-compat-array.amd-smi-static.json"),
    (parse_hl_smi, "hl-smi/gaudi2-hl225-x8-drv1.21.1.hl-smi-table.txt"),
    (parse_lscpu_json, "lscpu/util-linux-dump-x86_64-epyc_7451.lscpu-J.json"),
    (parse_numactl_hardware, "numactl/asus-esc8000a-e12-genoa-2node.numactl-hardware.txt"),
]


def _damage(text: str, cut: float, flips: list[tuple[float, str]]) -> str:
    chars = list(text[: int(len(text) * cut)])
    for where, char in flips:
        if chars:
            chars[int(where * (len(chars) - 1))] = char
    return "".join(chars)


@pytest.mark.parametrize(("parser", "fixture"), PARSERS, ids=[f for _, f in PARSERS])
@settings(max_examples=60, deadline=None)
@given(
    cut=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.sampled_from(list('<>{}[]":,|-x0 \n\t'))), max_size=4),
)
def test_damaged_output_fails_only_with_tool_output_error(
    parser: Callable[[str], object], fixture: str, cut: float, flips: list[tuple[float, str]]
) -> None:
    text = _damage(fixture_text(fixture), cut, flips)
    try:
        parser(text)
    except ToolOutputError as exc:
        assert exc.tool and exc.problem and "\n" not in exc.problem.strip()


@given(st.sets(st.integers(min_value=0, max_value=512)))
def test_cpulist_round_trip(cpus: set[int]) -> None:
    assert parse_cpulist(format_cpulist(sorted(cpus))) == tuple(sorted(cpus))


@given(st.integers(min_value=0, max_value=2**50))
def test_bytes_parse_plain_integers(count: int) -> None:
    assert parse_bytes(str(count)) == count
    assert format_bytes(count).split()[1] in {"B", "KiB", "MiB", "GiB", "TiB"}


@pytest.mark.parametrize(("text", "count"), [("80GiB", 80 * 1024**3), ("512 MB", 512 * 10**6), ("1.5TiB", 3 * 2**39)])
def test_bytes_units(text: str, count: int) -> None:
    assert parse_bytes(text) == count


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
KEYS = st.sampled_from(
    [
        "card0",
        "card1",
        "system",
        "gpu_data",
        "lscpu",
        "gpu",
        "asic",
        "bus",
        "numa",
        "vram",
        "field",
        "data",
        "PCI Bus",
        "Unique ID",
        "VRAM Total Memory (B)",
        "(Topology) Numa Node",
        "NUMA node0 CPU(s):",
        "0",
        "1",
    ]
)
SHAPED = st.recursive(
    st.none() | st.integers(-2, 70) | st.text(alphabet="0123456789-,.xN/A GT/s", max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=30,
)


@pytest.mark.parametrize("parser", [parse_rocm_smi_json, parse_amd_smi_static, parse_lscpu_json])
@settings(max_examples=150, deadline=None)
@given(document=st.one_of(JSON, SHAPED))
def test_any_json_fails_only_with_tool_output_error(parser: Callable[[str], object], document: object) -> None:
    with contextlib.suppress(ToolOutputError):
        parser(json.dumps(document))
