"""A fake ``pynvml`` that answers what NVML would on the A100 of our nvidia-smi capture.

Values are read from tests/fixtures/nvidia-smi-xml/a100-sxm4-80gb-mig-4x1g-drv535.54.03.xml
(the same GPU): NVML is never available on the machines that run the tests,
so this fake stands in for the library only, never for our code.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_AGGREGATE_ECC = 1


class NVMLError(Exception):
    """Base of NVML's errors."""


class NVMLError_NotSupported(NVMLError):
    """A query this GPU does not support."""


STATE: dict[str, Any] = {"init_error": None, "shutdowns": 0}

_GPU = SimpleNamespace(kind="gpu")
_MIGS = [SimpleNamespace(kind="mig", slot=i) for i in range(4)]


def nvmlInit() -> None:
    if STATE["init_error"]:
        raise NVMLError(STATE["init_error"])


def nvmlShutdown() -> None:
    STATE["shutdowns"] += 1


def nvmlSystemGetDriverVersion() -> str:
    return "535.54.03"


def nvmlSystemGetCudaDriverVersion() -> int:
    return 12020


def nvmlDeviceGetCount() -> int:
    return 1


def nvmlDeviceGetHandleByIndex(index: int) -> Any:
    return _GPU


def nvmlDeviceGetName(handle: Any) -> bytes:
    return b"NVIDIA A100-SXM4-80GB" if handle.kind == "gpu" else b"NVIDIA A100-SXM4-80GB MIG 1g.20gb"


def nvmlDeviceGetUUID(handle: Any) -> str:
    if handle.kind == "gpu":
        return "GPU-513536b6-7d19-9063-b049-1e69664bb298"
    return f"MIG-00000000-0000-0000-0000-00000000000{handle.slot}"


def nvmlDeviceGetMemoryInfo(handle: Any) -> Any:
    mib = 81920 if handle.kind == "gpu" else 19968
    return SimpleNamespace(total=mib * 1024**2)


def nvmlDeviceGetPciInfo(handle: Any) -> Any:
    return SimpleNamespace(busId=b"00000000:01:00.0")


def nvmlDeviceGetCudaComputeCapability(handle: Any) -> tuple[int, int]:
    return (8, 0)


def nvmlDeviceGetPersistenceMode(handle: Any) -> int:
    return 0


def nvmlDeviceGetEnforcedPowerLimit(handle: Any) -> int:
    return 500000


def nvmlDeviceGetPerformanceState(handle: Any) -> int:
    return 0


def nvmlDeviceGetCurrPcieLinkGeneration(handle: Any) -> int:
    return 4


def nvmlDeviceGetMaxPcieLinkGeneration(handle: Any) -> int:
    return 4


def nvmlDeviceGetCurrPcieLinkWidth(handle: Any) -> int:
    return 16


def nvmlDeviceGetMaxPcieLinkWidth(handle: Any) -> int:
    return 16


def nvmlDeviceGetEccMode(handle: Any) -> tuple[int, int]:
    return (1, 1)


def nvmlDeviceGetTotalEccErrors(handle: Any, error_type: int, counter: int) -> int:
    return 0


def nvmlDeviceGetRemappedRows(handle: Any) -> tuple[int, int, int, int]:
    raise NVMLError_NotSupported("Not Supported")


def nvmlDeviceGetMigMode(handle: Any) -> tuple[int, int]:
    return (1, 1)


def nvmlDeviceGetCurrentClocksEventReasons(handle: Any) -> int:
    return 0


def nvmlDeviceGetUtilizationRates(handle: Any) -> Any:
    raise NVMLError_NotSupported("Not Supported")  # MIG mode: utilisation is per instance


def nvmlDeviceGetMaxMigDeviceCount(handle: Any) -> int:
    return 7


def nvmlDeviceGetMigDeviceHandleByIndex(handle: Any, slot: int) -> Any:
    if slot >= len(_MIGS):
        raise NVMLError("Not Found")
    return _MIGS[slot]


def nvmlDeviceGetAttributes(handle: Any) -> Any:
    return SimpleNamespace(multiprocessorCount=14)


def nvmlDeviceGetGpuInstanceId(handle: Any) -> int:
    return 3 + int(handle.slot)


def nvmlDeviceGetComputeInstanceId(handle: Any) -> int:
    return 0


def nvmlDeviceGetComputeRunningProcesses(handle: Any) -> list[Any]:
    """NVML's nvmlProcessInfo_t list: pid and usedGpuMemory (the test sets ``STATE["processes"]``)."""
    return [SimpleNamespace(pid=pid, usedGpuMemory=memory) for pid, memory in STATE.get("processes", [])]
