"""CPU, NUMA, memory and host readers on sysfs trees built from the real lscpu/numactl captures."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import fixture_text
from tests.sysfs_tree import cpu_tree, host_tree, numa_tree, write
from tuxai.hardware.drm import read_drm_amd
from tuxai.hardware.lscpu import parse_lscpu_json
from tuxai.hardware.sysfs import parse_meminfo, pci_numa_node, read_cpu_topology, read_host
from tuxai.hardware.system import read_system_facts
from tuxai.model.cpu import parse_cpulist


def _lscpu_fields() -> dict[str, str]:
    data = json.loads(fixture_text("lscpu/util-linux-dump-x86_64-epyc_7451.lscpu-J.json"))
    return {entry["field"]: entry["data"] for entry in data["lscpu"]}


def test_epyc_7451_tree_from_the_lscpu_capture(tmp_path: Path) -> None:
    fields = _lscpu_fields()
    sockets, cores, threads = int(fields["Socket(s):"]), int(fields["Core(s) per socket:"]), 2
    cpu_tree(tmp_path, sockets, cores, threads)
    numa_tree(
        tmp_path,
        {n: (fields[f"NUMA node{n} CPU(s):"], None, " ".join(["10"] * 8)) for n in range(8)},
    )
    topology = read_cpu_topology(tmp_path)
    assert (topology.sockets, topology.cores_per_socket, topology.threads_per_core) == (2, 24, 2)
    assert topology.logical_cpus == 96
    assert len(topology.numa_nodes) == 8
    assert topology.numa_nodes[0].cpus == parse_cpulist("0-5,48-53")
    assert topology.numa_nodes[5].cpus == parse_cpulist("30-35,78-83")


def test_lscpu_fills_what_sysfs_lacks(tmp_path: Path) -> None:
    # A container that hides /sys/devices/system: lscpu's answer is used instead.
    report = parse_lscpu_json(fixture_text("lscpu/util-linux-dump-x86_64-epyc_7451.lscpu-J.json"))
    topology = read_cpu_topology(tmp_path, report)
    assert topology.model == "AMD EPYC 7451 24-Core Processor"
    assert topology.sockets == 2 and topology.cores_per_socket == 24 and topology.threads_per_core == 2
    assert [n.id for n in topology.numa_nodes] == list(range(8))
    assert topology.node(7) is not None and topology.node(7).cpus == parse_cpulist("42-47,90-95")  # type: ignore[union-attr]


def test_genoa_tree_from_the_numactl_capture(tmp_path: Path) -> None:
    # node 0: cpus 0-31, 193129 MB; node 1: cpus 32-63, 193477 MB; distances 10/32.
    cpu_tree(tmp_path, sockets=2, cores_per_socket=32, threads=1)
    numa_tree(tmp_path, {0: ("0-31", 193129 * 1024, "10 32"), 1: ("32-63", 193477 * 1024, "32 10")})
    topology = read_cpu_topology(tmp_path)
    assert topology.sockets == 2 and topology.logical_cpus == 64
    assert [n.memory_total_bytes for n in topology.numa_nodes] == [193129 * 1024**2, 193477 * 1024**2]
    assert [n.distances for n in topology.numa_nodes] == [(10, 32), (32, 10)]


def test_no_numa_directory_puts_everything_on_node_0(tmp_path: Path) -> None:
    cpu_tree(tmp_path, sockets=1, cores_per_socket=4, threads=2)
    topology = read_cpu_topology(tmp_path)
    assert [(n.id, n.cpus) for n in topology.numa_nodes] == [(0, tuple(range(8)))]


def test_host_and_hugepages(tmp_path: Path) -> None:
    host_tree(tmp_path, "gpu01", mem_kb=512 * 1024 * 1024)
    write(tmp_path, "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "1024")
    write(tmp_path, "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "1000")
    host = read_host(tmp_path)
    assert (host.hostname, host.kernel, host.distro) == ("gpu01", "6.1.0-test", "Debian GNU/Linux 12 (bookworm)")
    assert host.memory_total_bytes == 512 * 1024**3
    assert [(p.size_bytes, p.total, p.free) for p in host.hugepages] == [(2 * 1024**2, 1024, 1000)]


def test_empty_root_gives_unknowns_not_errors(tmp_path: Path) -> None:
    host = read_host(tmp_path)
    assert host.hostname == "unknown" and host.memory_total_bytes is None


def test_meminfo_units() -> None:
    assert parse_meminfo("MemTotal: 2 kB\nHugePages_Total:  3\nNode 1 MemFree: 1 kB") == {
        "MemTotal": 2048,
        "HugePages_Total": 3,
        "MemFree": 1024,
    }


def test_pci_numa_node(tmp_path: Path) -> None:
    write(tmp_path, "/sys/bus/pci/devices/0000:81:00.0/numa_node", "1")
    write(tmp_path, "/sys/bus/pci/devices/0000:01:00.0/numa_node", "-1")
    assert pci_numa_node(tmp_path, "0000:81:00.0") == 1
    assert pci_numa_node(tmp_path, "0000:01:00.0") is None
    assert pci_numa_node(tmp_path, "0000:02:00.0") is None


def test_system_settings(tmp_path: Path) -> None:
    write(tmp_path, "/sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never")
    write(tmp_path, "/proc/sys/vm/swappiness", "10")
    write(tmp_path, "/proc/sys/kernel/numa_balancing", "1")
    for cpu in range(2):
        write(tmp_path, f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor", "powersave")
        write(tmp_path, f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_driver", "acpi-cpufreq")
    (tmp_path / "sys/module/nouveau").mkdir(parents=True)
    (tmp_path / "sys/class/infiniband/mlx5_0").mkdir(parents=True)
    facts = read_system_facts(
        tmp_path,
        {
            "shm_total_bytes": 64 * 1024**2,
            "memlock_known": True,
            "memlock_limit_bytes": 65536,
            "device_nodes": [{"path": "/dev/nvidia0", "readable": False, "writable": False}],
            "visible_devices_env": {"CUDA_VISIBLE_DEVICES": "0"},
            "uid": 1000,
        },
    )
    assert facts.observed
    assert (facts.thp_enabled, facts.swappiness, facts.numa_balancing) == ("madvise", 10, 1)
    assert facts.cpu_governors == ("powersave",) and facts.cpufreq_driver == "acpi-cpufreq"
    assert facts.loaded_modules == ("nouveau",)
    assert facts.infiniband_devices == ("mlx5_0",)
    assert facts.env("CUDA_VISIBLE_DEVICES") == "0"
    assert facts.device_nodes[0].path == "/dev/nvidia0" and not facts.device_nodes[0].readable


def test_drm_fallback_finds_amd_cards_only(tmp_path: Path) -> None:
    # An MI100 as sysfs shows it (values from the rocm-smi capture of the same card), beside an
    # Intel iGPU that must be ignored.
    base = "/sys/class/drm/card1/device"
    write(tmp_path, f"{base}/vendor", "0x1002")
    write(tmp_path, f"{base}/device", "0x738c")
    write(tmp_path, f"{base}/uevent", "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:1E:00.0")
    write(tmp_path, f"{base}/numa_node", "0")
    write(tmp_path, f"{base}/mem_info_vram_total", "34342961152")
    write(tmp_path, f"{base}/current_link_speed", "8.0 GT/s PCIe")
    write(tmp_path, f"{base}/max_link_speed", "16.0 GT/s PCIe")
    write(tmp_path, f"{base}/current_link_width", "16")
    write(tmp_path, f"{base}/max_link_width", "16")
    write(tmp_path, "/sys/class/drm/card0/device/vendor", "0x8086")
    (gpu,) = read_drm_amd(tmp_path)
    assert gpu.pci_bus_id == "0000:1e:00.0"
    assert gpu.memory_total_bytes == 34342961152
    assert gpu.numa_node == 0
    assert (gpu.pcie.current_gen, gpu.pcie.max_gen, gpu.pcie.current_width) == (3, 4, 16)
    assert gpu.name == "AMD GPU 0x738c"
