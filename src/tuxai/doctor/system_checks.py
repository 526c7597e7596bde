"""Checks of Linux settings that help or hurt ML work, each with its effect."""

from __future__ import annotations

from collections.abc import Iterator

from tuxai.doctor.findings import Finding, Severity
from tuxai.model.inventory import Inventory
from tuxai.model.units import format_bytes

SHM_MINIMUM_BYTES = 1024**3


def check_shm(inventory: Inventory) -> Iterator[Finding]:
    """``/dev/shm`` carries every batch a DataLoader worker hands to the trainer."""
    size = inventory.system.shm_total_bytes
    if size is None:
        return
    if size < SHM_MINIMUM_BYTES:
        yield Finding(
            "system.shm_small",
            Severity.WARN,
            f"/dev/shm is {format_bytes(size)}; PyTorch DataLoader workers pass batches through it and fail "
            "with 'bus error' when it fills",
            "enlarge it: `sudo mount -o remount,size=16G /dev/shm`, or `docker run --shm-size=16g`",
        )
    else:
        yield Finding("system.shm", Severity.OK, f"/dev/shm is {format_bytes(size)}")


def check_thp(inventory: Inventory) -> Iterator[Finding]:
    """Transparent huge pages: reported with their effect, not judged."""
    mode = inventory.system.thp_enabled
    if mode is None:
        return
    effects = {
        "always": "large allocations get huge pages at once (faster TLB); khugepaged compaction can cause "
        "latency spikes on a loaded host",
        "madvise": "only programs that ask get huge pages (PyTorch's CPU allocator can); no compaction stalls "
        "for the rest",
        "never": "no transparent huge pages: more TLB misses for large host tensors",
    }
    yield Finding(
        "system.transparent_hugepages",
        Severity.OK,
        f"transparent huge pages: {mode} ({effects.get(mode, 'unknown mode')})",
    )


def check_swappiness(inventory: Inventory) -> Iterator[Finding]:
    """``vm.swappiness``: reported with its effect, not judged."""
    value = inventory.system.swappiness
    if value is None:
        return
    effect = (
        "the kernel swaps idle anonymous memory readily, which can page out a data loader's cache"
        if value >= 60
        else "the kernel prefers dropping file cache to swapping"
    )
    yield Finding("system.swappiness", Severity.OK, f"vm.swappiness = {value}: {effect}")


def check_numa_balancing(inventory: Inventory) -> Iterator[Finding]:
    """Automatic NUMA balancing migrates pages under pinned, GPU-feeding processes."""
    value = inventory.system.numa_balancing
    if value is None:
        return
    multi = len(inventory.cpu.numa_nodes) > 1
    if value and multi and inventory.gpus:
        yield Finding(
            "system.numa_balancing",
            Severity.WARN,
            f"automatic NUMA balancing is on ({value}) on a {len(inventory.cpu.numa_nodes)}-node host with GPUs: "
            "page migrations stall data loaders and GPUDirect transfers",
            "`sudo sysctl -w kernel.numa_balancing=0` (persist in /etc/sysctl.d/); tuxai pins jobs NUMA-locally",
        )
    else:
        where = "single NUMA node, no effect" if not multi else ("no GPUs" if value else "off")
        yield Finding("system.numa_balancing", Severity.OK, f"automatic NUMA balancing = {value} ({where})")


def check_memlock(inventory: Inventory) -> Iterator[Finding]:
    """RDMA (NCCL over InfiniBand/RoCE) registers memory and needs an unlimited memlock."""
    system = inventory.system
    if not system.memlock_known:
        return
    limit = "unlimited" if system.memlock_limit_bytes is None else format_bytes(system.memlock_limit_bytes)
    if system.memlock_limit_bytes is not None and system.infiniband_devices:
        yield Finding(
            "system.memlock",
            Severity.WARN,
            f"memlock limit is {limit} while RDMA devices ({', '.join(system.infiniband_devices)}) are present: "
            "NCCL fails to register buffers ('ibv_reg_mr failed')",
            "set `* - memlock unlimited` in /etc/security/limits.d/ (and LimitMEMLOCK=infinity for services)",
        )
    else:
        effect = "no RDMA device here, so it does not limit GPU work" if system.memlock_limit_bytes else "no limit"
        yield Finding("system.memlock", Severity.OK, f"memlock limit is {limit} ({effect})")


def check_governor(inventory: Inventory) -> Iterator[Finding]:
    """A CPU frequency governor pinned low starves data loading."""
    system = inventory.system
    if not system.cpu_governors:
        yield Finding(
            "system.cpu_governor",
            Severity.OK,
            "CPU frequency scaling is not exposed here (a VM or a firmware-controlled CPU)",
        )
        return
    governors = ", ".join(system.cpu_governors)
    legacy = system.cpufreq_driver in {"acpi-cpufreq", "cppc_cpufreq"}
    if "powersave" in system.cpu_governors and legacy:
        yield Finding(
            "system.cpu_governor",
            Severity.WARN,
            f"CPU governor {governors} with {system.cpufreq_driver}: cores stay at their lowest frequency, "
            "slowing data loading and kernel launches",
            "`sudo cpupower frequency-set -g performance` (or schedutil)",
        )
    else:
        yield Finding(
            "system.cpu_governor",
            Severity.OK,
            f"CPU governor {governors}" + (f" ({system.cpufreq_driver})" if system.cpufreq_driver else ""),
        )


def check_hugepages(inventory: Inventory) -> Iterator[Finding]:
    """Explicit huge pages reserve memory no job can use unless it asks for them."""
    reserved = [p for p in inventory.host.hugepages if p.total]
    if reserved:
        listed = ", ".join(f"{p.total} × {format_bytes(p.size_bytes)} ({p.free} free)" for p in reserved)
        yield Finding(
            "system.hugepages",
            Severity.OK,
            f"explicit huge pages reserved: {listed}; this memory is unavailable to ordinary allocations",
        )


def system_findings(inventory: Inventory) -> Iterator[Finding]:
    """Every Linux-settings check (none for a simulated machine)."""
    if not inventory.system.observed:
        return
    for check in (
        check_shm,
        check_thp,
        check_swappiness,
        check_numa_balancing,
        check_memlock,
        check_governor,
        check_hugepages,
    ):
        yield from check(inventory)
