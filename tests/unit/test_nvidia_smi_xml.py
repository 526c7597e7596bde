"""`nvidia-smi -q -x` parser on the four real captures (schemas v11, v12, v13)."""

from __future__ import annotations

import pytest

from tests.conftest import fixture_text
from tuxai.errors import ToolOutputError
from tuxai.hardware.nvidia_smi import mig_profile_name, parse_nvidia_smi_xml
from tuxai.model.gpu import Vendor

MIB = 1024**2


def test_a100_mig_capture() -> None:
    report = parse_nvidia_smi_xml(fixture_text("nvidia-smi-xml/a100-sxm4-80gb-mig-4x1g-drv535.54.03.xml"))
    assert (report.driver_version, report.cuda_version, report.schema) == ("535.54.03", "12.2", "nvsmi_device_v12")
    # attached_gpus says 4, but the contributor trimmed the file to one <gpu>.
    assert report.attached_gpus == 4
    assert len(report.gpus) == 1
    gpu = report.gpus[0]
    assert gpu.vendor is Vendor.NVIDIA
    assert gpu.name == "NVIDIA A100-SXM4-80GB"
    assert gpu.uuid == "GPU-513536b6-7d19-9063-b049-1e69664bb298"
    assert gpu.memory_total_bytes == 81920 * MIB
    assert gpu.pci_bus_id == "0000:01:00.0"
    assert gpu.architecture == "Ampere"
    assert gpu.compute_capability == "8.0"
    assert gpu.persistence_mode is False
    assert gpu.power_limit_w == 500.0
    assert gpu.performance_state == "P0"
    assert (gpu.pcie.current_gen, gpu.pcie.max_gen, gpu.pcie.current_width, gpu.pcie.max_width) == (4, 4, 16, 16)
    assert gpu.ecc.enabled is True
    assert gpu.ecc.volatile_uncorrectable == 0 and gpu.ecc.aggregate_uncorrectable == 0
    assert gpu.ecc.retired_pages is None  # "N/A" on a GPU that remaps rows instead
    assert gpu.mig_enabled is True and gpu.mig_pending is True
    assert [m.index for m in gpu.mig_devices] == [0, 1, 2, 3]
    assert [m.gpu_instance_id for m in gpu.mig_devices] == [3, 4, 5, 6]
    assert all(m.compute_instance_id == 0 for m in gpu.mig_devices)
    assert all(m.sm_count == 14 for m in gpu.mig_devices)
    assert all(m.memory_total_bytes == 19968 * MIB for m in gpu.mig_devices)
    # 14 SMs is one Ampere compute slice; 19968 MiB is the nominal 20 GB.
    assert all(m.profile == "1g.20gb" for m in gpu.mig_devices)
    assert all(m.uuid is None for m in gpu.mig_devices)  # the XML carries no MIG UUIDs
    assert gpu.throttle_reasons == ()


def test_v100s_eight_gpus_v11_schema() -> None:
    report = parse_nvidia_smi_xml(fixture_text("nvidia-smi-xml/tesla-v100s-pcie-32gb-x8-drv460.73.01.xml"))
    assert (report.driver_version, report.cuda_version, report.schema) == ("460.73.01", "11.2", "nvsmi_device_v11")
    assert len(report.gpus) == 8
    assert [g.uuid for g in report.gpus] == [
        "GPU-76098dc1-d3bc-9a1b-7ea6-f7b48837829e",
        "GPU-bbf7a241-bf9a-eb90-b2fb-d213294faf48",
        "GPU-8f75e71c-23dd-a060-d997-4caf592954db",
        "GPU-3181eb56-505c-8214-ba05-c132f68f89b8",
        "GPU-2aa87d54-d4ff-2900-812b-1a4b7e119583",
        "GPU-39c3a168-9034-0b5a-223a-1042f30a9242",
        "GPU-d2446f91-171e-1b54-515d-9d9b03484ddf",
        "GPU-1d955959-c95b-4f40-2cac-100d3006ffe2",
    ]
    assert [g.pci_bus_id for g in report.gpus] == [
        f"0000:00:{n}.0" for n in ("0d", "0e", "0f", "10", "11", "12", "13", "14")
    ]
    for index, gpu in enumerate(report.gpus):
        assert gpu.index == index
        assert gpu.name == "Tesla V100S-PCIE-32GB"
        assert gpu.memory_total_bytes == 32510 * MIB
        assert gpu.compute_capability == "7.0"
        assert gpu.power_limit_w == 250.0
        assert gpu.persistence_mode is False
        assert gpu.mig_enabled is None and gpu.mig_devices == ()
        assert gpu.ecc.enabled is True
        # v11 reports single_bit/double_bit totals; double-bit is the uncorrectable count.
        assert gpu.ecc.volatile_uncorrectable == 0 and gpu.ecc.aggregate_uncorrectable == 0
        assert gpu.ecc.retired_pages == 0 and gpu.ecc.retired_pages_pending is False
        assert (gpu.pcie.current_gen, gpu.pcie.max_gen, gpu.pcie.current_width, gpu.pcie.max_width) == (3, 3, 16, 16)


def test_t4_v11_narrow_link() -> None:
    report = parse_nvidia_smi_xml(fixture_text("nvidia-smi-xml/tesla-t4-drv515.105.01.xml"))
    assert (report.driver_version, report.cuda_version) == ("515.105.01", "11.7")
    (gpu,) = report.gpus
    assert gpu.name == "Tesla T4"
    assert gpu.uuid == "GPU-d37e67a5-91dd-3774-a5cb-99096249601a"
    assert gpu.pci_bus_id == "0000:00:1e.0"
    assert gpu.memory_total_bytes == 15360 * MIB
    assert gpu.architecture == "Turing" and gpu.compute_capability == "7.5"
    assert gpu.power_limit_w == 70.0  # v11 spells it <power_readings><power_limit>
    assert gpu.performance_state == "P0"
    # A x16 card running at x8 while busy (P0): the capture shows current 8x, max 16x.
    assert (gpu.pcie.current_width, gpu.pcie.max_width) == (8, 16)
    assert gpu.pcie.degraded
    assert gpu.ecc.retired_pages == 0 and gpu.ecc.retired_pages_pending is False


def test_a5000_pair_v13_schema() -> None:
    report = parse_nvidia_smi_xml(fixture_text("nvidia-smi-xml/rtx-a5000-x2-drv590.44.01-v13.xml"))
    assert (report.driver_version, report.cuda_version, report.schema) == ("590.44.01", "13.1", "nvsmi_device_v13")
    assert [g.name for g in report.gpus] == ["NVIDIA RTX A5000", "NVIDIA RTX A5000"]
    assert [g.uuid for g in report.gpus] == [
        "GPU-12345678-aaaa-bbbb-cccc-0123456789ab",
        "GPU-12345678-aaaa-bbbb-cccc-0123456789cd",
    ]
    assert [g.pci_bus_id for g in report.gpus] == ["0000:81:00.0", "0000:c1:00.0"]
    for gpu in report.gpus:
        assert gpu.memory_total_bytes == 24564 * MIB
        assert gpu.compute_capability == "8.6"
        assert gpu.persistence_mode is True
        assert gpu.power_limit_w == 230.0  # v13: <gpu_power_readings><current_power_limit>
        assert gpu.performance_state == "P8"
        assert gpu.ecc.enabled is False
        assert gpu.ecc.remapped_rows_pending is False and gpu.ecc.remapped_rows_failure is False
        # idle link trained down to Gen1 from Gen4
        assert (gpu.pcie.current_gen, gpu.pcie.max_gen) == (1, 4)
        assert gpu.mig_enabled is None and gpu.mig_devices == ()


@pytest.mark.parametrize(
    ("sm_count", "memory_mib", "architecture", "expected"),
    [
        (14, 19968, "Ampere", "1g.20gb"),
        (14, 9856, "Ampere", "1g.10gb"),
        (42, 39424, "Ampere", "3g.40gb"),
        (16, 9984, "Hopper", "1g.10gb"),
        (14, 9856, None, None),
    ],
)
def test_mig_profile_name(sm_count: int, memory_mib: int, architecture: str | None, expected: str | None) -> None:
    assert mig_profile_name(sm_count, memory_mib * MIB, architecture) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("<nvidia_smi_log><driver_version>535</driver_version><gpu id='1'>", "truncated or malformed"),
        ("<html>nope</html>", "expected <nvidia_smi_log>"),
        ("<nvidia_smi_log><gpu id='x'><uuid>GPU-1</uuid></gpu></nvidia_smi_log>", "no <product_name>"),
    ],
)
def test_malformed_output_names_the_tool(text: str, problem: str) -> None:
    with pytest.raises(ToolOutputError) as caught:
        parse_nvidia_smi_xml(text)
    assert caught.value.tool == "nvidia-smi -q -x"
    assert problem in caught.value.problem


def test_truncated_real_capture() -> None:
    text = fixture_text("nvidia-smi-xml/tesla-t4-drv515.105.01.xml")
    with pytest.raises(ToolOutputError, match="truncated"):
        parse_nvidia_smi_xml(text[: len(text) // 2])
