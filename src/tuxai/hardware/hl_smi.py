"""``hl-smi``: the default table of Intel Gaudi accelerators. Pure parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tuxai.errors import ToolOutputError
from tuxai.model.gpu import Ecc, Gpu, Vendor

TOOL = "hl-smi"
_FIRST = re.compile(r"^\|\s*(\d+)\s+(\S+)\s+(\S+)\s*\|\s*([0-9a-fA-F:.]+)\s+\S+\s*\|\s*(\d+|N/A)\s*\|")
_SECOND = re.compile(r"^\|\s*\S+\s+\S+\s+\S+\s+(\d+|N/A)W?\s*/\s*(\d+)W\s*\|\s*(\d+)MiB\s*/\s*(\d+)MiB\s*\|\s*(\d+)%")
_VERSION = re.compile(r"^\|\s*(HL-SMI Version|Driver Version):\s*(\S+)")


@dataclass(frozen=True)
class HlSmiReport:
    """Gaudi devices and the driver and hl-smi versions."""

    driver_version: str | None
    tool_version: str | None
    gpus: tuple[Gpu, ...]


def parse_hl_smi(text: str) -> HlSmiReport:
    """The ``hl-smi`` table → Gaudi devices.

    ``|   0  HL-225  N/A  | 0000:33:00.0  N/A |  21  |`` and the line beneath it
    → ``Gpu(vendor=INTEL_GAUDI, name="HL-225", ecc=Ecc(volatile_uncorrectable=21), …)``.

    Raises:
        ToolOutputError: no device rows, or a device row without its second line.
    """
    versions: dict[str, str] = {}
    lines = text.splitlines()
    gpus: list[Gpu] = []
    for number, line in enumerate(lines):
        version = _VERSION.match(line)
        if version:
            versions[version.group(1)] = version.group(2)
            continue
        first = _FIRST.match(line)
        if not first:
            continue
        second = _SECOND.match(lines[number + 1]) if number + 1 < len(lines) else None
        if second is None:
            raise ToolOutputError(TOOL, f"device {first.group(1)} has no usage line (output truncated?)")
        ecc = first.group(5)
        gpus.append(
            Gpu(
                vendor=Vendor.INTEL_GAUDI,
                index=int(first.group(1)),
                name=first.group(2),
                pci_bus_id=first.group(4).lower(),
                memory_total_bytes=int(second.group(4)) * 1024**2,
                driver_version=versions.get("Driver Version"),
                power_limit_w=float(second.group(2)),
                ecc=Ecc(volatile_uncorrectable=None if ecc == "N/A" else int(ecc)),
                utilization_pct=float(second.group(5)),
            )
        )
    if not gpus:
        raise ToolOutputError(TOOL, "no device rows found in the table")
    return HlSmiReport(versions.get("Driver Version"), versions.get("HL-SMI Version"), tuple(gpus))
