"""Checks of each accelerator: MIG, persistence, ECC, PCIe link, clocks, NUMA."""

from __future__ import annotations

from collections.abc import Iterator

from tuxai.doctor.findings import Finding, Severity
from tuxai.model.gpu import Gpu, Vendor
from tuxai.model.inventory import Inventory

_BUSY_PSTATES = {"P0", "P1", "P2"}
_HARD_THROTTLES = {
    "hw_slowdown": "hardware slowdown (power supply or over-temperature signal)",
    "hw_thermal_slowdown": "hardware thermal slowdown",
    "hw_power_brake_slowdown": "external power brake",
    "sw_thermal_slowdown": "driver thermal slowdown",
}


def _name(gpu: Gpu) -> str:
    return f"GPU {gpu.index} ({gpu.name})"


def check_mig(gpu: Gpu) -> Iterator[Finding]:
    """MIG enabled with no instances leaves the GPU unusable; a pending change needs a reset."""
    subject = _name(gpu)
    if gpu.mig_enabled and not gpu.mig_devices:
        yield Finding(
            "gpu.mig_no_instances",
            Severity.WARN,
            f"{subject}: MIG is enabled but no MIG instance exists, so no CUDA program can use this GPU",
            f"create instances (`sudo nvidia-smi mig -i {gpu.index} -cgi 1g.10gb -C`) "
            f"or disable MIG (`sudo nvidia-smi -i {gpu.index} -mig 0`)",
            subject,
        )
    if gpu.mig_enabled is not None and gpu.mig_pending is not None and gpu.mig_enabled != gpu.mig_pending:
        yield Finding(
            "gpu.mig_pending",
            Severity.WARN,
            f"{subject}: MIG mode is {'on' if gpu.mig_enabled else 'off'} but "
            f"{'on' if gpu.mig_pending else 'off'} is pending",
            f"reset the GPU when idle (`sudo nvidia-smi -i {gpu.index} -r`) or reboot",
            subject,
        )


def check_persistence(gpu: Gpu) -> Iterator[Finding]:
    """Without persistence the driver tears down between jobs: seconds of start-up each time."""
    if gpu.vendor is Vendor.NVIDIA and gpu.persistence_mode is False:
        yield Finding(
            "gpu.persistence_off",
            Severity.WARN,
            f"{_name(gpu)}: persistence mode is off; each job start re-initialises the GPU (seconds of delay)",
            "enable the persistence daemon: `sudo systemctl enable --now nvidia-persistenced` "
            "(or `sudo nvidia-smi -pm 1`)",
            _name(gpu),
        )


def check_ecc(gpu: Gpu) -> Iterator[Finding]:
    """Uncorrectable ECC errors, retired pages and row-remap failures."""
    ecc, subject = gpu.ecc, _name(gpu)
    volatile = ecc.volatile_uncorrectable or 0
    aggregate = ecc.aggregate_uncorrectable or 0
    if volatile or aggregate:
        yield Finding(
            "gpu.ecc_uncorrectable",
            Severity.ERROR,
            f"{subject}: {volatile} uncorrectable ECC error(s) since the driver loaded, {aggregate} in its lifetime",
            "drain jobs from this GPU, reset it (`nvidia-smi -r`) and run `dcgmi diag -r 3`; "
            "if errors return, open an RMA",
            subject,
        )
    if ecc.retired_pages_pending:
        yield Finding(
            "gpu.retired_pages_pending",
            Severity.ERROR,
            f"{subject}: memory pages are waiting to be retired",
            "reset the GPU or reboot to retire them",
            subject,
        )
    elif ecc.retired_pages:
        yield Finding(
            "gpu.retired_pages",
            Severity.WARN,
            f"{subject}: {ecc.retired_pages} memory page(s) retired",
            "watch the count; NVIDIA advises RMA past 60 double-bit or 64 total retirements",
            subject,
        )
    if ecc.remapped_rows_failure:
        yield Finding(
            "gpu.row_remap_failure",
            Severity.ERROR,
            f"{subject}: row remapping failed (memory has no spare rows left)",
            "take the GPU out of service and open an RMA",
            subject,
        )
    elif ecc.remapped_rows_pending:
        yield Finding(
            "gpu.row_remap_pending",
            Severity.WARN,
            f"{subject}: a row remap is pending",
            f"reset the GPU when idle (`sudo nvidia-smi -i {gpu.index} -r`) to apply it",
            subject,
        )


def check_pcie(gpu: Gpu) -> Iterator[Finding]:
    """A link below its maximum generation or width, judged only when the GPU is busy."""
    link, subject = gpu.pcie, _name(gpu)
    if not link.degraded:
        return
    observed = f"Gen{link.current_gen} x{link.current_width} (max Gen{link.max_gen} x{link.max_width})"
    if gpu.performance_state is not None and gpu.performance_state not in _BUSY_PSTATES:
        yield Finding(
            "gpu.pcie_link_idle",
            Severity.OK,
            f"{subject}: PCIe link at {observed} while idle in {gpu.performance_state}; links train down to save power",
            "re-run `tuxai doctor` while a job uses the GPU to judge the link",
            subject,
        )
        return
    width_short = link.current_width is not None and link.max_width is not None and link.current_width < link.max_width
    yield Finding(
        "gpu.pcie_link_degraded",
        Severity.WARN,
        f"{subject}: PCIe link at {observed}"
        + (f" in {gpu.performance_state}" if gpu.performance_state else "")
        + "; host↔GPU copies run slower",
        (
            "reseat the card or move it to a full-width slot; check the BIOS slot settings and riser"
            if width_short
            else "check the BIOS PCIe generation setting, the riser and the slot"
        ),
        subject,
    )


def check_throttle(gpu: Gpu) -> Iterator[Finding]:
    """Clocks held down by heat or power signals; a power cap under load is normal."""
    subject = _name(gpu)
    hard = [_HARD_THROTTLES[r] for r in gpu.throttle_reasons if r in _HARD_THROTTLES]
    if hard:
        yield Finding(
            "gpu.clocks_throttled",
            Severity.WARN,
            f"{subject}: clocks are throttled by {', '.join(hard)}",
            "check cooling (fans, airflow, inlet temperature) and power cabling; "
            "`nvidia-smi -q -d PERFORMANCE` shows the reasons live",
            subject,
        )
    elif "sw_power_cap" in gpu.throttle_reasons:
        yield Finding(
            "gpu.power_capped",
            Severity.OK,
            f"{subject}: running at its power limit"
            + (f" ({gpu.power_limit_w:.0f} W)" if gpu.power_limit_w else "")
            + ", which is normal under full load",
            "",
            subject,
        )


def check_numa(inventory: Inventory, gpu: Gpu) -> Iterator[Finding]:
    """A GPU on a NUMA node that has no CPUs cannot be fed from local cores."""
    if gpu.numa_node is None:
        return
    node = inventory.cpu.node(gpu.numa_node)
    if node is None or not node.cpus:
        yield Finding(
            "gpu.numa_node_without_cpus",
            Severity.WARN,
            f"{_name(gpu)}: attached to NUMA node {gpu.numa_node}, which has no CPUs here",
            "check the BIOS NUMA-per-socket setting and CPU isolation; jobs on this GPU will use remote CPUs",
            _name(gpu),
        )


def gpu_findings(inventory: Inventory) -> Iterator[Finding]:
    """Every per-accelerator check, over every accelerator."""
    if not inventory.gpus:
        yield Finding(
            "gpu.none",
            Severity.OK,
            "no accelerators found (no NVIDIA, AMD or Intel Gaudi device answered); jobs will run on CPUs",
        )
        return
    for gpu in inventory.gpus:
        yield from check_mig(gpu)
        yield from check_persistence(gpu)
        yield from check_ecc(gpu)
        yield from check_pcie(gpu)
        yield from check_throttle(gpu)
        yield from check_numa(inventory, gpu)
