"""GPU samplers behind one Protocol: NVML (NVIDIA), sysfs hwmon (AMD), simulated.

Each has one choke point to the outside (``_call`` for NVML, ``_read`` for sysfs), so a
missing query on an older GPU is a None, not an exception.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from tuxai.hardware.simulated import DeclaredProcess
from tuxai.model.gpu import Gpu
from tuxai.telemetry.samples import GpuProcess, GpuSample

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0


class GpuSampler(Protocol):
    """Samples every GPU. ``method`` names the source (``nvml``, ``amd-sysfs``, ``simulated``)."""

    method: str

    def sample(self, now: float, busy: Mapping[int, float]) -> list[GpuSample]:
        """One sample per GPU. ``busy``: each GPU's holders' CPU use (only the simulation reads it)."""
        ...


class NvmlSampler:
    """NVIDIA GPUs through NVML (``pynvml``, or a fake with the same functions)."""

    method = "nvml"

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        nvml.nvmlInit()
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        self._uuids = [self._text(self._call("nvmlDeviceGetUUID", h)) for h in self._handles]
        self._limits = [self._call("nvmlDeviceGetEnforcedPowerLimit", h) for h in self._handles]
        self._seen: list[int] = [0] * len(self._handles)  # per-process utilization since this timestamp

    def _call(self, name: str, *args: Any) -> Any:
        function: Callable[..., Any] | None = getattr(self.nvml, name, None)
        if function is None:
            return None
        try:
            return function(*args)
        except self.nvml.NVMLError:
            return None

    @staticmethod
    def _text(value: Any) -> str | None:
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def _processes(self, position: int, handle: Any) -> tuple[GpuProcess, ...]:
        running = self._call("nvmlDeviceGetComputeRunningProcesses", handle) or []
        utilization = self._call("nvmlDeviceGetProcessUtilization", handle, self._seen[position]) or []
        sm = {}
        for item in utilization:
            sm[item.pid] = float(item.smUtil)
            self._seen[position] = max(self._seen[position], int(item.timeStamp))
        return tuple(
            GpuProcess(p.pid, getattr(p, "usedGpuMemory", None), sm.get(p.pid), None, _instance(p)) for p in running
        )

    def sample(self, now: float, busy: Mapping[int, float]) -> list[GpuSample]:
        """Utilization, memory, power, energy counter, temperature, clocks, throttling, processes."""
        samples = []
        for position, handle in enumerate(self._handles):
            rates = self._call("nvmlDeviceGetUtilizationRates", handle)
            memory = self._call("nvmlDeviceGetMemoryInfo", handle)
            power_mw = self._call("nvmlDeviceGetPowerUsage", handle)
            energy_mj = self._call("nvmlDeviceGetTotalEnergyConsumption", handle)
            limit_mw = self._limits[position]
            samples.append(
                GpuSample(
                    index=position,
                    uuid=self._uuids[position],
                    at=now,
                    util_pct=float(rates.gpu) if rates is not None else None,
                    memory_used_bytes=memory.used if memory is not None else None,
                    memory_total_bytes=memory.total if memory is not None else None,
                    power_w=power_mw / 1000 if power_mw is not None else None,
                    power_limit_w=limit_mw / 1000 if limit_mw is not None else None,
                    energy_j=energy_mj / 1000 if energy_mj is not None else None,
                    temperature_c=self._call("nvmlDeviceGetTemperature", handle, NVML_TEMPERATURE_GPU),
                    sm_clock_mhz=self._call("nvmlDeviceGetClockInfo", handle, NVML_CLOCK_SM),
                    memory_clock_mhz=self._call("nvmlDeviceGetClockInfo", handle, NVML_CLOCK_MEM),
                    throttle_reasons=self._call("nvmlDeviceGetCurrentClocksEventReasons", handle) or 0,
                    ecc_uncorrected=self._call(
                        "nvmlDeviceGetTotalEccErrors", handle, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC
                    ),
                    processes=self._processes(position, handle),
                )
            )
        return samples


NVML_NO_INSTANCE = 0xFFFFFFFF  # nvmlProcessInfo_t.gpuInstanceId of a process on a GPU not in MIG mode


def _instance(process: Any) -> int | None:
    """The MIG GPU instance an NVML process runs on (``gpuInstanceId``), None outside MIG mode."""
    value = getattr(process, "gpuInstanceId", None)
    return None if value is None or value == NVML_NO_INSTANCE else int(value)


def _read(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class AmdSysfsSampler:
    """AMD GPUs from ``/sys/class/drm/cardN/device`` (amdgpu's sysfs and hwmon files)."""

    method = "amd-sysfs"

    def __init__(self, gpus: list[Gpu], root: Path = Path("/")) -> None:
        self.gpus = gpus
        self.devices = []
        for card in sorted((root / "sys/class/drm").glob("card[0-9]*")):
            if card.name[4:].isdigit() and (card / "device" / "gpu_busy_percent").exists():
                self.devices.append(card / "device")
        self._kfd = root / "sys/class/kfd/kfd"
        self._gpu_ids = self._kfd_gpu_ids()

    def _kfd_gpu_ids(self) -> dict[int, int]:
        """KFD's gpu_id of each device (by position), matched through the DRM render node's minor
        (``device/drm/renderD128`` ↔ topology ``properties``: ``drm_render_minor 128``)."""
        by_minor: dict[int, int] = {}
        for node in (self._kfd / "topology/nodes").glob("*"):
            gpu_id = _read(node / "gpu_id")
            with contextlib.suppress(OSError):
                for line in (node / "properties").read_text().splitlines():
                    if line.startswith("drm_render_minor ") and gpu_id:
                        by_minor[int(line.split()[1])] = gpu_id
        found = {}
        for position, device in enumerate(self.devices):
            for render in device.glob("drm/renderD[0-9]*"):
                if int(render.name[7:]) in by_minor:
                    found[position] = by_minor[int(render.name[7:])]
        return found

    def _processes(self, position: int) -> tuple[GpuProcess, ...]:
        """The compute processes on a device: ``/sys/class/kfd/kfd/proc/PID/vram_GPUID`` (what
        ``rocm-smi --showpids`` reads), with their VRAM in bytes."""
        gpu_id = self._gpu_ids.get(position)
        if gpu_id is None:
            return ()
        found = []
        for entry in sorted(self._kfd.glob("proc/[0-9]*")):
            if (entry / f"vram_{gpu_id}").exists():
                found.append(GpuProcess(int(entry.name), _read(entry / f"vram_{gpu_id}")))
        return tuple(found)

    def sample(self, now: float, busy: Mapping[int, float]) -> list[GpuSample]:
        """``gpu_busy_percent``, VRAM used and total, ``power1_average`` (µW), ``temp1_input`` (m°C)."""
        samples = []
        for position, device in enumerate(self.devices):
            hwmon = next(iter(sorted(device.glob("hwmon/hwmon*"))), device)
            power = _read(hwmon / "power1_average") or _read(hwmon / "power1_input")
            cap = _read(hwmon / "power1_cap")
            temperature = _read(hwmon / "temp1_input")
            uuid = self.gpus[position].uuid if position < len(self.gpus) else None
            busy_pct = _read(device / "gpu_busy_percent")
            samples.append(
                GpuSample(
                    index=position,
                    uuid=uuid,
                    at=now,
                    util_pct=float(busy_pct) if busy_pct is not None else None,
                    memory_used_bytes=_read(device / "mem_info_vram_used"),
                    memory_total_bytes=_read(device / "mem_info_vram_total"),
                    power_w=power / 1e6 if power is not None else None,
                    power_limit_w=cap / 1e6 if cap is not None else None,
                    temperature_c=temperature / 1000 if temperature is not None else None,
                    processes=self._processes(position),
                )
            )
        return samples


class SimulatedSampler:
    """GPUs of a simulated inventory: a GPU is as busy as the CPU of the job holding it.

    Power runs from 15 % of the limit idle to the limit at full use; the energy counter is
    the exact integral. Enough to exercise attribution, detection, Prometheus and ``top``
    on a machine without GPUs; labelled ``simulated`` wherever it shows. The inventory's
    ``processes:`` run on their GPUs as processes tuxai did not start would.
    """

    method = "simulated"

    def __init__(self, gpus: list[Gpu], processes: Sequence[DeclaredProcess] = ()) -> None:
        self.gpus = gpus
        self.processes: dict[int, tuple[GpuProcess, ...]] = {}
        for declared in processes:
            instance = next(
                (m.gpu_instance_id for m in gpus[declared.gpu].mig_devices if m.index == declared.mig), None
            )
            process = GpuProcess(declared.pid, declared.memory_bytes, None, declared.user, instance)
            self.processes[declared.gpu] = (*self.processes.get(declared.gpu, ()), process)
        self._energy = [0.0] * len(gpus)
        self._last: float | None = None

    def sample(self, now: float, busy: Mapping[int, float]) -> list[GpuSample]:
        """One sample per simulated GPU."""
        elapsed = 0.0 if self._last is None else max(0.0, now - self._last)
        self._last = now
        samples = []
        for position, gpu in enumerate(self.gpus):
            util = max(0.0, min(100.0, busy.get(gpu.index, 0.0) * 100))
            limit = gpu.power_limit_w or 300.0
            power = limit * (0.15 + 0.85 * util / 100)
            self._energy[position] += power * elapsed
            total = gpu.memory_total_bytes or 0
            processes = self.processes.get(gpu.index, ())
            outside = sum(p.memory_bytes or 0 for p in processes)
            samples.append(
                GpuSample(
                    index=gpu.index,
                    uuid=gpu.uuid,
                    at=now,
                    util_pct=round(util, 1),
                    memory_used_bytes=min(total, int(total * util / 200) + outside),
                    memory_total_bytes=total,
                    power_w=round(power, 3),
                    power_limit_w=limit,
                    energy_j=self._energy[position],
                    temperature_c=round(35 + 45 * util / 100 + math.sin(now) * 0.5, 1),
                    processes=processes,
                )
            )
        return samples


class NoGpuSampler:
    """A machine without GPUs (or whose GPUs cannot be read): no GPU samples."""

    method = "none"

    def __init__(self, why: str = "no GPUs") -> None:
        self.why = why

    def sample(self, now: float, busy: Mapping[int, float]) -> list[GpuSample]:
        """Nothing."""
        return []


def sampler_for(gpus: list[Gpu], simulated: bool, processes: Sequence[DeclaredProcess] = ()) -> GpuSampler:
    """The sampler this machine's GPUs call for: simulated (running ``processes``), NVML, AMD sysfs, or none."""
    from tuxai.model.gpu import Vendor

    if simulated:
        return SimulatedSampler(gpus, processes)
    if any(g.vendor is Vendor.NVIDIA for g in gpus):
        try:
            import pynvml

            return NvmlSampler(pynvml)
        except Exception as exc:  # noqa: BLE001 (NVML's errors are many; any of them means no NVML)
            return NoGpuSampler(f"NVML is not usable: {exc}")
    if any(g.vendor is Vendor.AMD for g in gpus):
        return AmdSysfsSampler([g for g in gpus if g.vendor is Vendor.AMD])
    return NoGpuSampler()
