"""The NVML probe against a fake library that answers like the A100 of our capture."""

from __future__ import annotations

import json
import sys

import pytest

from tests import fake_pynvml
from tests.conftest import fixture_text
from tuxai.errors import ToolOutputError
from tuxai.hardware.nvidia_smi import parse_nvidia_smi_xml
from tuxai.hardware.nvml import nvml_snapshot, parse_nvml_snapshot


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml)
    monkeypatch.setitem(fake_pynvml.STATE, "init_error", None)
    return fake_pynvml


def test_snapshot_agrees_with_nvidia_smi_on_the_same_gpu(nvml: object) -> None:
    snapshot = nvml_snapshot()
    assert snapshot is not None
    # The snapshot is what `doctor --record` writes as nvml.json: it must survive JSON.
    (gpu,) = parse_nvml_snapshot(json.loads(json.dumps(snapshot)))
    (xml_gpu,) = parse_nvidia_smi_xml(fixture_text("nvidia-smi-xml/a100-sxm4-80gb-mig-4x1g-drv535.54.03.xml")).gpus
    for field in ("name", "uuid", "memory_total_bytes", "pci_bus_id", "compute_capability", "persistence_mode"):
        assert getattr(gpu, field) == getattr(xml_gpu, field), field
    assert gpu.power_limit_w == xml_gpu.power_limit_w == 500.0
    assert gpu.pcie == xml_gpu.pcie
    assert (gpu.driver_version, gpu.cuda_version) == ("535.54.03", "12.2")
    assert gpu.performance_state == "P0"
    assert gpu.mig_enabled is True
    assert [m.profile for m in gpu.mig_devices] == ["1g.20gb"] * 4  # NVML names the profile
    assert [m.gpu_instance_id for m in gpu.mig_devices] == [3, 4, 5, 6]
    assert [m.memory_total_bytes for m in gpu.mig_devices] == [m.memory_total_bytes for m in xml_gpu.mig_devices]
    assert all(m.uuid and m.uuid.startswith("MIG-") for m in gpu.mig_devices)
    assert gpu.ecc.remapped_rows_failure is None  # "Not Supported" stays unknown, not False
    assert gpu.utilization_pct is None


def test_library_absent_means_no_nvidia(nvml: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fake_pynvml.STATE, "init_error", "NVML Shared Library Not Found")
    assert nvml_snapshot() is None


def test_other_init_failure_is_a_problem(nvml: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fake_pynvml.STATE, "init_error", "Insufficient Permissions")
    with pytest.raises(ToolOutputError, match="nvmlInit failed: Insufficient Permissions"):
        nvml_snapshot()


def test_real_pynvml_without_a_driver_reports_nothing() -> None:
    # This machine has nvidia-ml-py installed but no NVIDIA driver.
    assert nvml_snapshot() is None


@pytest.mark.parametrize("snapshot", [{}, {"devices": [{"uuid": "GPU-1"}]}, {"devices": "many"}])
def test_malformed_snapshot(snapshot: dict[str, object]) -> None:
    with pytest.raises(ToolOutputError):
        parse_nvml_snapshot(snapshot)
