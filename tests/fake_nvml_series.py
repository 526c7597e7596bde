"""A fake ``pynvml`` that replays a series of samples (tests/fixtures/nvml-samples/), one tick per ``advance()``.

It stands in for the library only: the sampler under test calls it exactly as it calls NVML.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any


class NVMLError(Exception):
    """Base of NVML's errors."""


class NVMLError_NotSupported(NVMLError):
    """A query this GPU does not support."""


class FakeNvmlSeries:
    """The functions the telemetry sampler calls, answering from one tick of the series."""

    NVMLError = NVMLError

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.ticks: list[dict[str, Any]] = data["ticks"]
        self.power_limit_mw: int = data["power_limit_mw"]
        self.tick = 0
        self.calls: list[str] = []

    def advance(self) -> None:
        self.tick += 1

    def _gpu(self, handle: Any) -> dict[str, Any]:
        gpu: dict[str, Any] = self.ticks[self.tick]["gpus"][handle.index]
        return gpu

    def nvmlInit(self) -> None:
        self.calls.append("init")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.ticks[0]["gpus"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        return SimpleNamespace(index=index)

    def nvmlDeviceGetUUID(self, handle: Any) -> bytes:
        return str(self._gpu(handle)["uuid"]).encode()

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:
        return self.power_limit_mw

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        return SimpleNamespace(gpu=self._gpu(handle)["util"], memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        gpu = self._gpu(handle)
        return SimpleNamespace(used=gpu["memory_used"], total=gpu["memory_total"], free=0)

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        return int(self._gpu(handle)["power_mw"])

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        value = self._gpu(handle)["energy_mj"]
        if value is None:
            raise NVMLError_NotSupported("Not Supported")
        return int(value)

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        return int(self._gpu(handle)["temperature"])

    def nvmlDeviceGetClockInfo(self, handle: Any, clock: int) -> int:
        return int(self._gpu(handle)["sm_clock" if clock == 1 else "mem_clock"])

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int:
        return int(self._gpu(handle)["throttle"])

    def nvmlDeviceGetTotalEccErrors(self, handle: Any, error_type: int, counter: int) -> int:
        return int(self._gpu(handle).get("ecc_uncorrected", 0))

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:
        return [SimpleNamespace(pid=p["pid"], usedGpuMemory=p["used"]) for p in self._gpu(handle)["processes"]]

    def nvmlDeviceGetProcessUtilization(self, handle: Any, since: int) -> list[Any]:
        at = int(self.ticks[self.tick]["at"] * 1e6)
        if at <= since:
            return []
        return [SimpleNamespace(pid=p["pid"], smUtil=p["sm"], timeStamp=at) for p in self._gpu(handle)["processes"]]
