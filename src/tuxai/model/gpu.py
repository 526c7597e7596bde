"""Accelerators: whole GPUs and MIG slices."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# PCIe transfer rate per lane → generation, as sysfs and rocm-smi state the rate.
PCIE_GEN_BY_GTS = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}


def normalize_bus_id(raw: str | None) -> str | None:
    """``"00000000:81:00.0"`` (NVIDIA's 8-digit domain) → ``"0000:81:00.0"``, lower case, as sysfs names it."""
    if not raw:
        return None
    domain, _, rest = raw.strip().partition(":")
    return f"{domain[-4:]}:{rest}".lower()


class Vendor(StrEnum):
    """Who made the accelerator."""

    NVIDIA = "nvidia"
    AMD = "amd"
    INTEL_GAUDI = "intel-gaudi"


@dataclass(frozen=True)
class PcieLink:
    """Current and maximum PCIe generation and width of a device's link."""

    current_gen: int | None = None
    max_gen: int | None = None
    current_width: int | None = None
    max_width: int | None = None

    @property
    def degraded(self) -> bool:
        """True when the link runs below what it could do."""
        gen = self.current_gen is not None and self.max_gen is not None and self.current_gen < self.max_gen
        width = self.current_width is not None and self.max_width is not None and self.current_width < self.max_width
        return gen or width


@dataclass(frozen=True)
class Ecc:
    """ECC mode and the error counters that matter for health."""

    enabled: bool | None = None
    volatile_uncorrectable: int | None = None
    aggregate_uncorrectable: int | None = None
    retired_pages: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None


@dataclass(frozen=True)
class MigDevice:
    """One MIG instance: a GPU instance with its compute instance."""

    index: int
    profile: str | None
    memory_total_bytes: int | None
    sm_count: int | None
    uuid: str | None = None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None


@dataclass(frozen=True)
class Gpu:
    """One accelerator as the vendor tool or library reports it."""

    vendor: Vendor
    index: int
    name: str
    uuid: str | None = None
    memory_total_bytes: int | None = None
    pci_bus_id: str | None = None
    numa_node: int | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    rocm_version: str | None = None
    compute_capability: str | None = None
    gfx_target: str | None = None
    architecture: str | None = None
    persistence_mode: bool | None = None
    power_limit_w: float | None = None
    performance_state: str | None = None
    pcie: PcieLink = field(default_factory=PcieLink)
    ecc: Ecc = field(default_factory=Ecc)
    mig_enabled: bool | None = None
    mig_pending: bool | None = None
    mig_devices: tuple[MigDevice, ...] = ()
    throttle_reasons: tuple[str, ...] = ()
    utilization_pct: float | None = None
    minor_number: int | None = None  # NVIDIA: the N of /dev/nvidiaN (not always the index)
