"""CPU, NUMA, memory, huge pages and host facts from ``/sys``, ``/proc`` and ``/etc``.

Every reader takes the filesystem root, so tests and ``doctor --replay`` point
it at a small tree instead of ``/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tuxai.hardware.lscpu import LscpuReport
from tuxai.model.cpu import CpuTopology, NumaNode, parse_cpulist
from tuxai.model.inventory import Host, HugePages


def read_text(root: Path, path: str) -> str | None:
    """The stripped content of ``root/path``, or None when absent or unreadable."""
    try:
        return (root / path.lstrip("/")).read_text(errors="replace").strip()
    except OSError:
        return None


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` → values in bytes (counts stay counts).

    ``"MemTotal:  24684084 kB\\nHugePages_Total: 0"`` → ``{"MemTotal": 25276502016, "HugePages_Total": 0}``.
    """
    values: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^(?:Node \d+ )?([\w()]+):\s+(\d+)(?:\s+(kB))?$", line.strip())
        if match:
            values[match.group(1)] = int(match.group(2)) * (1024 if match.group(3) else 1)
    return values


def read_host(root: Path) -> Host:
    """Hostname, kernel, distribution, memory and huge pages of the host."""
    meminfo = parse_meminfo(read_text(root, "/proc/meminfo") or "")
    distro = "unknown"
    os_release = read_text(root, "/etc/os-release") or ""
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?$', os_release, re.MULTILINE)
    if match:
        distro = match.group(1)
    return Host(
        hostname=read_text(root, "/proc/sys/kernel/hostname") or "unknown",
        kernel=read_text(root, "/proc/sys/kernel/osrelease") or "unknown",
        distro=distro,
        memory_total_bytes=meminfo.get("MemTotal"),
        memory_available_bytes=meminfo.get("MemAvailable"),
        hugepages=_hugepages(root),
    )


def _hugepages(root: Path) -> tuple[HugePages, ...]:
    base = root / "sys/kernel/mm/hugepages"
    pools = []
    for pool in sorted(base.glob("hugepages-*kB")) if base.is_dir() else []:
        size = re.search(r"hugepages-(\d+)kB", pool.name)
        total = read_text(root, f"/sys/kernel/mm/hugepages/{pool.name}/nr_hugepages")
        free = read_text(root, f"/sys/kernel/mm/hugepages/{pool.name}/free_hugepages")
        if size and total is not None and total.isdigit():
            pools.append(
                HugePages(
                    size_bytes=int(size.group(1)) * 1024,
                    total=int(total),
                    free=int(free) if free and free.isdigit() else 0,
                )
            )
    return tuple(pools)


def _numa_nodes(root: Path) -> tuple[NumaNode, ...]:
    base = root / "sys/devices/system/node"
    nodes = []
    for path in sorted(base.glob("node[0-9]*"), key=lambda p: int(p.name[4:])) if base.is_dir() else []:
        node_id = int(path.name[4:])
        cpulist = read_text(root, f"/sys/devices/system/node/{path.name}/cpulist") or ""
        meminfo = parse_meminfo(read_text(root, f"/sys/devices/system/node/{path.name}/meminfo") or "")
        distance = read_text(root, f"/sys/devices/system/node/{path.name}/distance") or ""
        nodes.append(
            NumaNode(
                id=node_id,
                cpus=parse_cpulist(cpulist) if cpulist else (),
                memory_total_bytes=meminfo.get("MemTotal"),
                distances=tuple(int(v) for v in distance.split()),
            )
        )
    return tuple(nodes)


def _cpu_model(root: Path) -> str | None:
    cpuinfo = read_text(root, "/proc/cpuinfo") or ""
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return match.group(1).strip() if match else None


def read_cpu_topology(root: Path, lscpu: LscpuReport | None = None, numactl: tuple[NumaNode, ...] = ()) -> CpuTopology:
    """Sockets, cores, threads and NUMA nodes: sysfs first, then ``numactl``, then ``lscpu`` to fill gaps.

    Without any NUMA directory (a kernel without NUMA) every CPU is put on node 0.
    """
    online_text = read_text(root, "/sys/devices/system/cpu/online")
    online = parse_cpulist(online_text) if online_text else (lscpu.online_cpus if lscpu else ())
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    for cpu in online:
        package = read_text(root, f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id")
        core = read_text(root, f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id")
        if package is not None and core is not None:
            packages.add(package)
            cores.add((package, core))
    sockets = len(packages) or (lscpu.sockets if lscpu and lscpu.sockets else 1)
    core_count = len(cores) or (
        lscpu.cores_per_socket * sockets if lscpu and lscpu.cores_per_socket else len(online) or 1
    )
    nodes = _numa_nodes(root)
    if not nodes and numactl:
        nodes = numactl
    if not nodes and lscpu and lscpu.numa_cpus:
        nodes = tuple(NumaNode(id=n, cpus=c) for n, c in sorted(lscpu.numa_cpus.items()))
    if not nodes:
        nodes = (NumaNode(id=0, cpus=online),)
    return CpuTopology(
        model=_cpu_model(root) or (lscpu.model if lscpu and lscpu.model else "unknown"),
        sockets=sockets,
        cores_per_socket=max(1, core_count // sockets),
        threads_per_core=max(1, len(online) // core_count) if online else 1,
        online_cpus=online,
        numa_nodes=nodes,
    )


def pci_numa_node(root: Path, pci_bus_id: str | None) -> int | None:
    """The NUMA node sysfs gives a PCI device, None when unknown (-1)."""
    if not pci_bus_id:
        return None
    value = read_text(root, f"/sys/bus/pci/devices/{pci_bus_id.lower()}/numa_node")
    if value is None or not value.lstrip("-").isdigit() or int(value) < 0:
        return None
    return int(value)
