"""``nvidia-smi -q -x``: every GPU, MIG devices, driver schema v11 to v13.

Pure parser; running the command is ``tuxai.hardware.source``'s job (the one place tools run).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from tuxai.errors import ToolOutputError
from tuxai.model.gpu import Ecc, Gpu, MigDevice, PcieLink, Vendor, normalize_bus_id

TOOL = "nvidia-smi -q -x"

# Compute capability by product name, for tools that do not report it (NVML does).
_COMPUTE_CAPABILITY = (
    (re.compile(r"\b(B200|B100|GB200)\b"), "10.0"),
    (re.compile(r"\b(H100|H200|H800|GH200)\b"), "9.0"),
    (re.compile(r"\b(L4|L40S?|RTX (6000|5000|4500|4000|2000) Ada|RTX 40\d0)\b"), "8.9"),
    (re.compile(r"\b(A100|A800|A30)\b"), "8.0"),
    (re.compile(r"\b(A10G?|A16|A2|A40|RTX A\d000|RTX 30\d0)\b"), "8.6"),
    (re.compile(r"\b(T4|RTX 20\d0|Quadro RTX)\b"), "7.5"),
    (re.compile(r"\bV100"), "7.0"),
    (re.compile(r"\bP100"), "6.0"),
    (re.compile(r"\b(P40|P4)\b"), "6.1"),
)

# SMs in one MIG compute slice, by architecture, to name a profile the XML leaves out.
SM_PER_MIG_SLICE = {"Ampere": 14, "Hopper": 16, "Blackwell": 18}

_THROTTLE_NAMES = {
    "sw_power_cap": "sw_power_cap",
    "hw_slowdown": "hw_slowdown",
    "hw_thermal_slowdown": "hw_thermal_slowdown",
    "hw_power_brake_slowdown": "hw_power_brake_slowdown",
    "sw_thermal_slowdown": "sw_thermal_slowdown",
    "sync_boost": "sync_boost",
}


@dataclass(frozen=True)
class NvidiaSmiReport:
    """What ``nvidia-smi -q -x`` says: driver, CUDA, schema and GPUs."""

    driver_version: str | None
    cuda_version: str | None
    schema: str | None
    attached_gpus: int | None
    gpus: tuple[Gpu, ...]


def compute_capability_for(name: str) -> str | None:
    """``"Tesla V100S-PCIE-32GB"`` → ``"7.0"``; None for a product we do not know."""
    for pattern, capability in _COMPUTE_CAPABILITY:
        if pattern.search(name):
            return capability
    return None


def _text(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    if not value or value in {"N/A", "[N/A]", "None", "Requested functionality has been deprecated"}:
        return None
    return value


def _int(node: ET.Element | None, path: str) -> int | None:
    value = _text(node, path)
    if value is None:
        return None
    match = re.match(r"^-?\d+", value)
    return int(match.group(0)) if match else None


def _mib(node: ET.Element | None, path: str) -> int | None:
    value = _text(node, path)
    if value is None:
        return None
    match = re.match(r"^(\d+)\s*MiB$", value)
    return int(match.group(1)) * 1024**2 if match else None


def _watts(node: ET.Element | None, path: str) -> float | None:
    value = _text(node, path)
    if value is None:
        return None
    match = re.match(r"^([\d.]+)\s*W$", value)
    return float(match.group(1)) if match else None


def _flag(node: ET.Element | None, path: str, yes: str = "Enabled") -> bool | None:
    value = _text(node, path)
    return None if value is None else value == yes


def mig_profile_name(sm_count: int | None, memory_bytes: int | None, architecture: str | None) -> str | None:
    """Name a MIG profile the XML leaves unnamed: 14 SMs, 19968 MiB on Ampere → ``"1g.20gb"``.

    The memory part rounds to NVIDIA's nominal sizes (multiples of 5 GB);
    NVML's profile name, when present, wins over this.
    """
    if sm_count is None or memory_bytes is None or architecture not in SM_PER_MIG_SLICE:
        return None
    slices = max(1, round(sm_count / SM_PER_MIG_SLICE[architecture]))
    gib = memory_bytes / 1024**3
    nominal = max(5, int(5 * round(gib / 5)))
    return f"{slices}g.{nominal}gb"


def _ecc(gpu: ET.Element) -> Ecc:
    errors = gpu.find("ecc_errors")

    def total(scope: str) -> int | None:
        if errors is None:
            return None
        node = errors.find(scope)
        if node is None:
            return None
        if node.find("double_bit") is not None:  # drivers before R470: single_bit / double_bit totals
            return _int(node, "double_bit/total")
        counts = [
            _int(node, child.tag) for child in node if "uncorrectable" in child.tag and "sources" not in child.tag
        ]
        known = [c for c in counts if c is not None]
        return sum(known) if known else None

    retired_counts = [
        _int(gpu, "retired_pages/multiple_single_bit_retirement/retired_count"),
        _int(gpu, "retired_pages/double_bit_retirement/retired_count"),
    ]
    retired_known = [c for c in retired_counts if c is not None]
    return Ecc(
        enabled=_flag(gpu, "ecc_mode/current_ecc"),
        volatile_uncorrectable=total("volatile"),
        aggregate_uncorrectable=total("aggregate"),
        retired_pages=sum(retired_known) if retired_known else None,
        retired_pages_pending=_flag(gpu, "retired_pages/pending_retirement", yes="Yes"),
        remapped_rows_pending=_flag(gpu, "remapped_rows/remapped_row_pending", yes="Yes"),
        remapped_rows_failure=_flag(gpu, "remapped_rows/remapped_row_failure", yes="Yes"),
    )


def _throttle(gpu: ET.Element) -> tuple[str, ...]:
    # v12+ say clocks_event_reasons, v11 said clocks_throttle_reasons.
    block = gpu.find("clocks_event_reasons")
    prefix = "clocks_event_reason_"
    if block is None:
        block = gpu.find("clocks_throttle_reasons")
        prefix = "clocks_throttle_reason_"
    if block is None:
        return ()
    active = []
    for child in block:
        name = child.tag.removeprefix(prefix)
        if name in _THROTTLE_NAMES and (child.text or "").strip() == "Active":
            active.append(_THROTTLE_NAMES[name])
    return tuple(active)


def _mig_devices(gpu: ET.Element, architecture: str | None) -> tuple[MigDevice, ...]:
    block = gpu.find("mig_devices")
    if block is None:
        return ()
    devices = []
    for position, node in enumerate(block.findall("mig_device")):
        sm_count = _int(node, "device_attributes/shared/multiprocessor_count")
        memory = _mib(node, "fb_memory_usage/total")
        index = _int(node, "index")
        devices.append(
            MigDevice(
                index=position if index is None else index,
                profile=_text(node, "profile_name") or mig_profile_name(sm_count, memory, architecture),
                memory_total_bytes=memory,
                sm_count=sm_count,
                uuid=_text(node, "uuid"),
                gpu_instance_id=_int(node, "gpu_instance_id"),
                compute_instance_id=_int(node, "compute_instance_id"),
            )
        )
    return tuple(devices)


def _gpu(node: ET.Element, position: int, driver: str | None, cuda: str | None) -> Gpu:
    name = _text(node, "product_name")
    if name is None:
        raise ToolOutputError(TOOL, f"GPU {position} has no <product_name>")
    architecture = _text(node, "product_architecture")
    power_limit = _watts(node, "gpu_power_readings/current_power_limit")
    if power_limit is None:
        power_limit = _watts(node, "power_readings/power_limit")
    utilization = _int(node, "utilization/gpu_util")
    return Gpu(
        vendor=Vendor.NVIDIA,
        index=position,
        name=name,
        uuid=_text(node, "uuid"),
        memory_total_bytes=_mib(node, "fb_memory_usage/total"),
        pci_bus_id=normalize_bus_id(_text(node, "pci/pci_bus_id") or node.get("id")),
        driver_version=driver,
        cuda_version=cuda,
        compute_capability=compute_capability_for(name),
        architecture=architecture,
        persistence_mode=_flag(node, "persistence_mode"),
        power_limit_w=power_limit,
        performance_state=_text(node, "performance_state"),
        minor_number=_int(node, "minor_number"),
        pcie=PcieLink(
            current_gen=_int(node, "pci/pci_gpu_link_info/pcie_gen/current_link_gen"),
            max_gen=_int(node, "pci/pci_gpu_link_info/pcie_gen/max_link_gen"),
            current_width=_int(node, "pci/pci_gpu_link_info/link_widths/current_link_width"),
            max_width=_int(node, "pci/pci_gpu_link_info/link_widths/max_link_width"),
        ),
        ecc=_ecc(node),
        mig_enabled=_flag(node, "mig_mode/current_mig"),
        mig_pending=_flag(node, "mig_mode/pending_mig"),
        mig_devices=_mig_devices(node, architecture),
        throttle_reasons=_throttle(node),
        utilization_pct=None if utilization is None else float(utilization),
    )


def parse_nvidia_smi_xml(text: str) -> NvidiaSmiReport:
    """``nvidia-smi -q -x`` output → driver, CUDA version and GPUs.

    ``<driver_version>535.54.03</driver_version> … <gpu id="00000000:01:00.0">``
    → ``NvidiaSmiReport(driver_version="535.54.03", gpus=(Gpu(name="NVIDIA A100-SXM4-80GB", …),))``.

    Raises:
        ToolOutputError: the XML is truncated, malformed or not nvidia-smi's.
    """
    if not text.strip():
        raise ToolOutputError(TOOL, "the output is empty")
    # The DOCTYPE names an external DTD that is not shipped; drop it before parsing.
    body = re.sub(r"<!DOCTYPE[^>]*>", "", text, count=1)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ToolOutputError(TOOL, f"the XML is truncated or malformed ({exc})") from None
    if root.tag != "nvidia_smi_log":
        raise ToolOutputError(TOOL, f"expected <nvidia_smi_log>, found <{root.tag}>")
    schema_match = re.search(r'"(nvsmi_device_v\d+)\.dtd"', text)
    driver = _text(root, "driver_version")
    cuda = _text(root, "cuda_version")
    gpus = tuple(_gpu(node, i, driver, cuda) for i, node in enumerate(root.findall("gpu")))
    return NvidiaSmiReport(
        driver_version=driver,
        cuda_version=cuda,
        schema=schema_match.group(1) if schema_match else None,
        attached_gpus=_int(root, "attached_gpus"),
        gpus=gpus,
    )
