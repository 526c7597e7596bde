"""NVIDIA GPUs through NVML (``nvidia-ml-py``), the first choice on a live machine.

``nvml_snapshot()`` is the only code that calls NVML: it returns a plain,
JSON-able dict (saved as ``nvml.json`` by ``doctor --record``), and
``parse_nvml_snapshot`` turns such a dict into ``Gpu`` objects, purely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuxai.errors import ToolOutputError
from tuxai.hardware.nvidia_smi import compute_capability_for
from tuxai.model.gpu import Ecc, Gpu, MigDevice, PcieLink, Vendor, normalize_bus_id

TOOL = "NVML"

# nvmlClocksEventReasons bits (nvml.h); the "idle" and "applications clocks" bits are not throttling.
_THROTTLE_BITS = {
    0x04: "sw_power_cap",
    0x08: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_snapshot() -> dict[str, Any] | None:
    """Read every GPU through NVML; None when the NVML library or driver is absent.

    Raises:
        ToolOutputError: NVML loaded but failed in a way that needs a person.
    """
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        if "NVML Shared Library Not Found" in str(exc) or "Driver Not Loaded" in str(exc):
            return None
        raise ToolOutputError(TOOL, f"nvmlInit failed: {exc}") from None

    def call(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except pynvml.NVMLError:
            return None

    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = call(pynvml.nvmlDeviceGetMemoryInfo, handle)
            pci = call(pynvml.nvmlDeviceGetPciInfo, handle)
            capability = call(pynvml.nvmlDeviceGetCudaComputeCapability, handle)
            mig = call(pynvml.nvmlDeviceGetMigMode, handle)
            util = call(pynvml.nvmlDeviceGetUtilizationRates, handle)
            device: dict[str, Any] = {
                "name": _text(pynvml.nvmlDeviceGetName(handle)),
                "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
                "memory_total_bytes": memory.total if memory else None,
                "pci_bus_id": _text(pci.busId) if pci else None,
                "compute_capability": f"{capability[0]}.{capability[1]}" if capability else None,
                "persistence_mode": call(pynvml.nvmlDeviceGetPersistenceMode, handle),
                "minor_number": call(getattr(pynvml, "nvmlDeviceGetMinorNumber", lambda _: None), handle),
                "power_limit_mw": call(pynvml.nvmlDeviceGetEnforcedPowerLimit, handle),
                "pstate": call(pynvml.nvmlDeviceGetPerformanceState, handle),
                "pcie_current_gen": call(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, handle),
                "pcie_max_gen": call(pynvml.nvmlDeviceGetMaxPcieLinkGeneration, handle),
                "pcie_current_width": call(pynvml.nvmlDeviceGetCurrPcieLinkWidth, handle),
                "pcie_max_width": call(pynvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
                "ecc_mode": (call(pynvml.nvmlDeviceGetEccMode, handle) or [None])[0],
                "ecc_volatile_uncorrectable": call(
                    pynvml.nvmlDeviceGetTotalEccErrors,
                    handle,
                    pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                    pynvml.NVML_VOLATILE_ECC,
                ),
                "ecc_aggregate_uncorrectable": call(
                    pynvml.nvmlDeviceGetTotalEccErrors,
                    handle,
                    pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                    pynvml.NVML_AGGREGATE_ECC,
                ),
                "remapped_rows": list(call(pynvml.nvmlDeviceGetRemappedRows, handle) or []) or None,
                "mig_current": mig[0] if mig else None,
                "mig_pending": mig[1] if mig else None,
                "throttle_bitmask": call(pynvml.nvmlDeviceGetCurrentClocksEventReasons, handle),
                "utilization_pct": util.gpu if util else None,
                "mig_devices": _mig_snapshot(pynvml, handle, call) if mig and mig[0] == 1 else [],
            }
            devices.append(device)
        return {
            "driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": call(pynvml.nvmlSystemGetCudaDriverVersion),
            "devices": devices,
        }
    except pynvml.NVMLError as exc:
        raise ToolOutputError(TOOL, f"reading devices failed: {exc}") from None
    finally:
        call(pynvml.nvmlShutdown)


def _mig_snapshot(pynvml: Any, handle: Any, call: Callable[..., Any]) -> list[dict[str, Any]]:
    out = []
    count = call(pynvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0
    for slot in range(count):
        mig = call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot)
        if mig is None:
            continue
        attributes = call(pynvml.nvmlDeviceGetAttributes, mig)
        memory = call(pynvml.nvmlDeviceGetMemoryInfo, mig)
        name = call(pynvml.nvmlDeviceGetName, mig)
        out.append(
            {
                "index": slot,
                "uuid": _text(call(pynvml.nvmlDeviceGetUUID, mig) or "") or None,
                "name": _text(name) if name else None,
                "memory_total_bytes": memory.total if memory else None,
                "sm_count": attributes.multiprocessorCount if attributes else None,
                "gpu_instance_id": call(pynvml.nvmlDeviceGetGpuInstanceId, mig),
                "compute_instance_id": call(pynvml.nvmlDeviceGetComputeInstanceId, mig),
            }
        )
    return out


def _profile(name: str | None) -> str | None:
    """``"NVIDIA A100-SXM4-80GB MIG 1g.10gb"`` → ``"1g.10gb"``."""
    if not name or " MIG " not in name:
        return None
    return name.rsplit(" MIG ", 1)[1].strip() or None


def _cuda(version: Any) -> str | None:
    """NVML's integer CUDA version ``12020`` → ``"12.2"``."""
    if not isinstance(version, int) or version <= 0:
        return None
    return f"{version // 1000}.{(version % 1000) // 10}"


def parse_nvml_snapshot(snapshot: dict[str, Any]) -> tuple[Gpu, ...]:
    """An ``nvml_snapshot()`` dict → ``Gpu`` objects.

    ``{"driver_version": "535.54.03", "devices": [{"name": "NVIDIA A100-SXM4-80GB", …}]}``
    → ``(Gpu(vendor=NVIDIA, name="NVIDIA A100-SXM4-80GB", …),)``.

    Raises:
        ToolOutputError: the snapshot lacks its device list or a device its name.
    """
    devices = snapshot.get("devices")
    if not isinstance(devices, list):
        raise ToolOutputError(TOOL, "snapshot has no device list")
    driver = snapshot.get("driver_version")
    cuda = _cuda(snapshot.get("cuda_driver_version"))
    gpus = []
    for index, device in enumerate(devices):
        if not isinstance(device, dict) or not isinstance(device.get("name"), str):
            raise ToolOutputError(TOOL, f"device {index} has no name")
        rows = device.get("remapped_rows")
        bitmask = device.get("throttle_bitmask") or 0
        power = device.get("power_limit_mw")
        pstate = device.get("pstate")
        util = device.get("utilization_pct")
        gpus.append(
            Gpu(
                vendor=Vendor.NVIDIA,
                index=index,
                name=device["name"],
                uuid=device.get("uuid"),
                memory_total_bytes=device.get("memory_total_bytes"),
                pci_bus_id=normalize_bus_id(device.get("pci_bus_id")),
                driver_version=driver,
                cuda_version=cuda,
                compute_capability=device.get("compute_capability") or compute_capability_for(device["name"]),
                persistence_mode=None if device.get("persistence_mode") is None else device["persistence_mode"] == 1,
                power_limit_w=power / 1000 if isinstance(power, int | float) else None,
                performance_state=f"P{pstate}" if isinstance(pstate, int) else None,
                minor_number=device["minor_number"] if isinstance(device.get("minor_number"), int) else None,
                pcie=PcieLink(
                    current_gen=device.get("pcie_current_gen"),
                    max_gen=device.get("pcie_max_gen"),
                    current_width=device.get("pcie_current_width"),
                    max_width=device.get("pcie_max_width"),
                ),
                ecc=Ecc(
                    enabled=None if device.get("ecc_mode") is None else device["ecc_mode"] == 1,
                    volatile_uncorrectable=device.get("ecc_volatile_uncorrectable"),
                    aggregate_uncorrectable=device.get("ecc_aggregate_uncorrectable"),
                    remapped_rows_pending=bool(rows[2]) if isinstance(rows, list) and len(rows) > 3 else None,
                    remapped_rows_failure=bool(rows[3]) if isinstance(rows, list) and len(rows) > 3 else None,
                ),
                mig_enabled=None if device.get("mig_current") is None else device["mig_current"] == 1,
                mig_pending=None if device.get("mig_pending") is None else device["mig_pending"] == 1,
                mig_devices=tuple(
                    MigDevice(
                        index=m.get("index", i),
                        profile=_profile(m.get("name")),
                        memory_total_bytes=m.get("memory_total_bytes"),
                        sm_count=m.get("sm_count"),
                        uuid=m.get("uuid"),
                        gpu_instance_id=m.get("gpu_instance_id"),
                        compute_instance_id=m.get("compute_instance_id"),
                    )
                    for i, m in enumerate(device.get("mig_devices") or [])
                ),
                throttle_reasons=tuple(name for bit, name in _THROTTLE_BITS.items() if bitmask & bit),
                utilization_pct=float(util) if isinstance(util, int | float) else None,
            )
        )
    return tuple(gpus)
