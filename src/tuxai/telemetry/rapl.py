"""CPU package and DRAM energy from RAPL (``/sys/class/powercap``): package zones only, wrap-around.

``read_rapl(root)`` reads the counters (or says why it cannot); ``counter_delta`` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RaplReading:
    """Package zones' counters in joules and their wrap ranges; ``problem`` when unreadable."""

    packages_j: dict[str, float] = field(default_factory=dict)
    ranges_j: dict[str, float] = field(default_factory=dict)
    dram_j: dict[str, float] = field(default_factory=dict)
    problem: str = ""


def counter_delta(previous: float, current: float, range_j: float) -> float:
    """Energy between two readings of a counter that wraps at ``range_j``.

    >>> counter_delta(262000.0, 10.0, 262143.328850)
    153.32885
    """
    delta = current - previous
    return round(delta + range_j, 6) if delta < 0 else delta


def read_rapl(root: Path = Path("/")) -> RaplReading:
    """Every ``intel-rapl:N`` package zone (and its ``dram`` subzone) under ``root``."""
    base = root / "sys/class/powercap"
    if not base.is_dir():
        return RaplReading(problem="no /sys/class/powercap (no RAPL: a VM, or not an Intel/AMD CPU with RAPL)")
    packages: dict[str, float] = {}
    ranges: dict[str, float] = {}
    dram: dict[str, float] = {}
    for zone in sorted(base.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:
            continue  # subzones are read through their package
        try:
            name = (zone / "name").read_text().strip()
            if not name.startswith("package"):
                continue
            packages[zone.name] = int((zone / "energy_uj").read_text()) / 1e6
            ranges[zone.name] = int((zone / "max_energy_range_uj").read_text()) / 1e6
            for sub in zone.glob(f"{zone.name}:*"):
                if (sub / "name").read_text().strip() == "dram":
                    dram[sub.name] = int((sub / "energy_uj").read_text()) / 1e6
        except PermissionError:
            return RaplReading(
                problem=f"{zone}/energy_uj is readable by root only (since Linux 5.10, CVE-2020-8694)",
            )
        except (OSError, ValueError) as exc:
            return RaplReading(problem=f"{zone}: {exc}")
    if not packages:
        return RaplReading(problem=f"{base} has no package zone")
    return RaplReading(packages, ranges, dram)


RAPL_HINT = "run the daemon as root, or `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` (a udev rule)"
