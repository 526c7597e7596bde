"""Build small /sys, /proc and /etc trees in a temporary folder for the sysfs readers."""

from __future__ import annotations

from pathlib import Path


def write(root: Path, path: str, content: str) -> None:
    """Write one file under ``root`` (``path`` is absolute, as on the machine)."""
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content if content.endswith("\n") else content + "\n")


def cpu_tree(root: Path, sockets: int, cores_per_socket: int, threads: int) -> None:
    """CPU topology files: first threads of every core, then their siblings (Linux's usual order)."""
    cores = sockets * cores_per_socket
    write(root, "/sys/devices/system/cpu/online", f"0-{cores * threads - 1}")
    for cpu in range(cores * threads):
        core = cpu % cores
        write(root, f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id", str(core // cores_per_socket))
        write(root, f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id", str(core % cores_per_socket))


def numa_tree(root: Path, nodes: dict[int, tuple[str, int | None, str]]) -> None:
    """NUMA node files: node id → (cpulist, MemTotal in kB or None, distance row)."""
    for node, (cpulist, mem_kb, distance) in nodes.items():
        write(root, f"/sys/devices/system/node/node{node}/cpulist", cpulist)
        if mem_kb is not None:
            write(root, f"/sys/devices/system/node/node{node}/meminfo", f"Node {node} MemTotal:       {mem_kb} kB")
        write(root, f"/sys/devices/system/node/node{node}/distance", distance)


def host_tree(root: Path, hostname: str = "box", mem_kb: int = 16 * 1024 * 1024) -> None:
    """Host identity and memory files."""
    write(root, "/proc/sys/kernel/hostname", hostname)
    write(root, "/proc/sys/kernel/osrelease", "6.1.0-test")
    write(root, "/etc/os-release", 'NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    write(root, "/proc/meminfo", f"MemTotal:       {mem_kb} kB\nMemAvailable:   {mem_kb // 2} kB\n")
