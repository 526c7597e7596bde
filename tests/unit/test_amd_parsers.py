"""rocm-smi (ROCm 5 and 6 spellings) and amd-smi (bare-array form) on real captures."""

from __future__ import annotations

import json

import pytest

from tests.conftest import fixture_text
from tuxai.errors import ToolOutputError
from tuxai.hardware.amd_smi import parse_amd_smi_static
from tuxai.hardware.rocm_smi import parse_rocm_smi_json
from tuxai.model.gpu import Vendor
from tuxai.model.links import LinkKind

MI100 = "rocm-smi-json/mi100-x6-rocm5.7.1-drv6.2.4.rocm-smi-json.json"
MI50 = "rocm-smi-json/mi50-32gb-card0-of-8-drv5.9.17.rocm-smi-json.json"
RX6700 = "rocm-smi-json/rx6700xt-rocm6.1.2-drv6.3.6.rocm-smi-json.json"
STRIX = "amd-smi-json/strix-halo-radeon8060s-static-compat-array.amd-smi-static.json"


def test_mi100_six_cards_and_pcie_topology() -> None:
    report = parse_rocm_smi_json(fixture_text(MI100))
    assert report.driver_version == "6.2.4"
    assert len(report.gpus) == 6
    assert [g.pci_bus_id for g in report.gpus] == [
        "0000:1e:00.0",
        "0000:22:00.0",
        "0000:3f:00.0",
        "0000:43:00.0",
        "0000:46:00.0",
        "0000:49:00.0",
    ]
    for gpu in report.gpus:
        assert gpu.vendor is Vendor.AMD
        assert gpu.name == "Arcturus GL-XL [Instinct MI100]"
        assert gpu.memory_total_bytes == 34342961152
        assert gpu.numa_node == 0
        assert gpu.uuid is None  # "Unique ID": "N/A"
        assert gpu.driver_version == "6.2.4"
        assert gpu.power_limit_w == 290.0
    assert (report.gpus[0].pcie.current_gen, report.gpus[0].pcie.current_width) == (3, 16)  # 8.0GT/s x16
    assert report.topology_devices == 6
    for a in range(6):
        for b in range(6):
            link = report.links.between(a, b)
            if a == b:
                assert link.kind is LinkKind.SELF
            else:
                assert (link.kind, link.hops, link.weight) == (LinkKind.PCIE, 2, 40)


def test_mi50_one_card_but_topology_of_eight() -> None:
    report = parse_rocm_smi_json(fixture_text(MI50))
    assert report.driver_version == "5.9.17"
    (gpu,) = report.gpus
    assert gpu.name == "Radeon Instinct MI50 32GB"
    assert gpu.pci_bus_id == "0000:63:00.0"
    assert gpu.memory_total_bytes == 34342961152
    assert gpu.uuid == "GPU-02f048617326b1ea"  # Unique ID 0x2f048617326b1ea, as ROCR_VISIBLE_DEVICES spells it
    assert (gpu.pcie.current_gen, gpu.pcie.max_gen, gpu.pcie.current_width) == (4, 4, 16)
    assert report.topology_devices == 8
    assert report.links.size == 1


def test_rx6700xt_rocm6_spellings() -> None:
    report = parse_rocm_smi_json(fixture_text(RX6700))
    (gpu,) = report.gpus
    assert gpu.name == "Navi 22 [Radeon RX 6700/6700 XT / 6800M]"
    assert gpu.gfx_target == "gfx1031"
    assert gpu.pci_bus_id == "0000:07:00.0"
    assert gpu.memory_total_bytes == 12868124672
    assert gpu.numa_node == 0
    assert gpu.power_limit_w == 211.0
    assert report.driver_version == "6.3.6"
    assert (gpu.pcie.current_gen, gpu.pcie.max_gen, gpu.pcie.current_width, gpu.pcie.max_width) == (4, 4, 16, 16)


def test_amd_smi_bare_array() -> None:
    (gpu,) = parse_amd_smi_static(fixture_text(STRIX))
    assert gpu.vendor is Vendor.AMD
    assert gpu.index == 0
    assert gpu.name == "Strix Halo [Radeon Graphics / Radeon 8050S Graphics / Radeon 8060S Graphics]"
    assert gpu.gfx_target == "gfx1151"
    assert gpu.pci_bus_id == "0000:c4:00.0"
    assert gpu.memory_total_bytes == 32768 * 1024**2
    assert gpu.numa_node == 0
    assert gpu.driver_version == "6.17.1-300.fc43.x86_64"
    assert gpu.power_limit_w is None  # max_power 0 W means "not reported" on an APU
    assert gpu.uuid is None


def test_amd_smi_wrapped_form_gives_the_same_gpus() -> None:
    bare = json.loads(fixture_text(STRIX))
    wrapped = json.dumps({"gpu_data": bare})
    assert parse_amd_smi_static(wrapped) == parse_amd_smi_static(json.dumps(bare))


@pytest.mark.parametrize(
    ("parser", "text", "tool"),
    [
        (parse_rocm_smi_json, '{"card0": {"Card series": "MI', "rocm-smi --showallinfo --json"),
        (parse_rocm_smi_json, "[1, 2]", "rocm-smi --showallinfo --json"),
        (parse_amd_smi_static, '[{"gpu": 0, "asic": {', "amd-smi static --json"),
        (parse_amd_smi_static, '{"something": 1}', "amd-smi static --json"),
    ],
)
def test_malformed_amd_output(parser: object, text: str, tool: str) -> None:
    assert callable(parser)
    with pytest.raises(ToolOutputError) as caught:
        parser(text)
    assert caught.value.tool == tool


def test_truncated_real_rocm_capture() -> None:
    text = fixture_text(MI100)
    with pytest.raises(ToolOutputError, match="truncated"):
        parse_rocm_smi_json(text[:5000])
