"""`--record` / `--replay`: recordings of this machine, and folders made of real captures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import FIXTURES
from tests.sysfs_tree import cpu_tree, host_tree, numa_tree, write
from tuxai.doctor import Severity, diagnose, report_to_json
from tuxai.hardware.probe import ProbeOptions, collect_inventory
from tuxai.hardware.source import TOOLS, RecordingSource, ReplaySource
from tuxai.model.gpu import Vendor
from tuxai.model.links import LinkKind


def _recording(tmp_path: Path, tools: dict[str, str], frameworks: object = None) -> Path:
    """A recording folder holding real captures under their recording names."""
    folder = tmp_path / "rec"
    folder.mkdir()
    for name, fixture in tools.items():
        assert name in TOOLS
        shutil.copy(FIXTURES / fixture, folder / name)
    root = folder / "sysfs"
    host_tree(root, "replayed")
    cpu_tree(root, sockets=2, cores_per_socket=24, threads=2)
    numa_tree(root, {0: ("0-23,48-71", None, "10 32"), 1: ("24-47,72-95", None, "32 10")})
    (folder / "host-facts.json").write_text(json.dumps({"shm_total_bytes": 2**34, "memlock_known": True, "uid": 0}))
    if frameworks is not None:
        (folder / "frameworks.json").write_text(json.dumps(frameworks))
    return folder


def _replay(folder: Path) -> tuple[object, list[tuple[str, Severity, str]]]:
    inventory = collect_inventory(ReplaySource(folder), ProbeOptions(frameworks=True))
    report = diagnose(inventory)
    return inventory, [(f.id, f.severity, f.message) for f in report.findings]


def test_record_then_replay_gives_the_same_report(tmp_path: Path) -> None:
    live = collect_inventory(RecordingSource(tmp_path / "rec"), ProbeOptions(frameworks=True, framework_timeout_s=60))
    replayed = collect_inventory(ReplaySource(tmp_path / "rec"), ProbeOptions(frameworks=True))
    first, second = report_to_json(diagnose(live)), report_to_json(diagnose(replayed))
    assert first.pop("source").startswith("record:") and second.pop("source").startswith("replay:")
    assert first == second
    names = {p.name for p in (tmp_path / "rec").iterdir()}
    assert {"sysfs", "host-facts.json", "frameworks.json"} <= names
    assert (tmp_path / "rec/sysfs/proc/meminfo").is_file()
    if shutil.which("lscpu"):
        assert "lscpu-J.json" in names


def test_t4_box_with_a_cuda_12_torch(tmp_path: Path) -> None:
    torch = {"name": "torch", "installed": True, "version": "2.3.0", "build_cuda": "12.1", "gpu_support": True}
    folder = _recording(
        tmp_path,
        {
            "nvidia-smi-q-x.xml": "nvidia-smi-xml/tesla-t4-drv515.105.01.xml",
            "lscpu-J.json": "lscpu/util-linux-dump-x86_64-epyc_7451.lscpu-J.json",
        },
        [torch],
    )
    inventory, findings = _replay(folder)
    assert [g.name for g in inventory.gpus] == ["Tesla T4"]  # type: ignore[attr-defined]
    assert inventory.cpu.model == "AMD EPYC 7451 24-Core Processor"  # type: ignore[attr-defined]
    ids = {f[0]: f[1] for f in findings}
    assert ids["framework.driver_too_old"] is Severity.ERROR
    assert ids["gpu.pcie_link_degraded"] is Severity.WARN
    assert ids["framework.sees_fewer_devices"] is Severity.ERROR  # a CUDA build that sees nothing


def test_trimmed_a100_capture_against_a_full_topology(tmp_path: Path) -> None:
    folder = _recording(
        tmp_path,
        {
            "nvidia-smi-q-x.xml": "nvidia-smi-xml/a100-sxm4-80gb-mig-4x1g-drv535.54.03.xml",
            "nvidia-smi-topo-m.txt": "nvidia-smi-topo/a100-sxm4-40gb-x8-nv12-nic10-8numa.topo.txt",
        },
    )
    write(folder / "sysfs", "/sys/bus/pci/devices/0000:01:00.0/numa_node", "1")
    inventory, findings = _replay(folder)
    (gpu,) = inventory.gpus  # type: ignore[attr-defined]
    assert len(gpu.mig_devices) == 4
    assert gpu.numa_node == 1  # from sysfs, since the matrix was rejected
    problem = next(f for f in findings if f[0] == "probe.tool_output")
    assert problem[1] is Severity.WARN and "matrix has 8 GPUs but the driver reports 1" in problem[2]


def test_mi100_box(tmp_path: Path) -> None:
    folder = _recording(
        tmp_path, {"rocm-smi-showallinfo.json": "rocm-smi-json/mi100-x6-rocm5.7.1-drv6.2.4.rocm-smi-json.json"}
    )
    inventory, findings = _replay(folder)
    gpus = inventory.gpus  # type: ignore[attr-defined]
    assert len(gpus) == 6 and all(g.vendor is Vendor.AMD for g in gpus)
    assert inventory.links.between(0, 5).kind is LinkKind.PCIE  # type: ignore[attr-defined]
    assert not any(f[1] is Severity.ERROR for f in findings)


def test_mi50_topology_of_eight_with_one_card(tmp_path: Path) -> None:
    folder = _recording(
        tmp_path, {"rocm-smi-showallinfo.json": "rocm-smi-json/mi50-32gb-card0-of-8-drv5.9.17.rocm-smi-json.json"}
    )
    _, findings = _replay(folder)
    problem = next(f for f in findings if f[0] == "probe.tool_output")
    assert problem[1] is Severity.WARN and "describes 8 devices but only 1 card(s) answered" in problem[2]


def test_gaudi_box(tmp_path: Path) -> None:
    folder = _recording(tmp_path, {"hl-smi.txt": "hl-smi/gaudi2-hl225-x8-drv1.21.1.hl-smi-table.txt"})
    inventory, findings = _replay(folder)
    assert len(inventory.gpus) == 8  # type: ignore[attr-defined]
    assert [f[0] for f in findings].count("gpu.ecc_uncorrectable") == 2


def test_truncated_capture_becomes_a_finding(tmp_path: Path) -> None:
    folder = _recording(tmp_path, {})
    text = (FIXTURES / "nvidia-smi-xml/rtx-a5000-x2-drv590.44.01-v13.xml").read_text()
    (folder / "nvidia-smi-q-x.xml").write_text(text[:20000])
    inventory, findings = _replay(folder)
    assert inventory.gpus == ()  # type: ignore[attr-defined]
    problem = next(f for f in findings if f[0] == "probe.tool_output")
    assert problem[1] is Severity.ERROR
    assert problem[2].startswith("nvidia-smi -q -x: the XML is truncated or malformed")


def test_failed_tool_becomes_a_finding(tmp_path: Path) -> None:
    folder = _recording(tmp_path, {})
    message = (
        "`nvidia-smi -q -x` exited with status 9: NVIDIA-SMI has failed because it couldn't communicate "
        "with the NVIDIA driver."
    )
    (folder / "nvidia-smi-q-x.xml.error").write_text(message + "\n")
    _, findings = _replay(folder)
    problem = next(f for f in findings if f[0] == "probe.tool_output")
    assert problem[1] is Severity.ERROR and "couldn't communicate with the NVIDIA driver" in problem[2]


def test_malformed_saved_json_becomes_a_finding(tmp_path: Path) -> None:
    folder = _recording(tmp_path, {})
    (folder / "frameworks.json").write_text('[{"name": "torch", "inst')
    inventory, findings = _replay(folder)
    assert inventory.frameworks == ()  # type: ignore[attr-defined]
    assert any(f[0] == "probe.tool_output" and "frameworks.json" in f[2] for f in findings)


def test_damaged_sysfs_and_host_facts_become_findings(tmp_path: Path) -> None:
    folder = _recording(tmp_path, {"lscpu-J.json": "lscpu/util-linux-dump-x86_64-epyc_7451.lscpu-J.json"})
    write(folder / "sysfs", "/sys/devices/system/node/node0/cpulist", "0-x")
    (folder / "host-facts.json").write_text(json.dumps({"device_nodes": [{"path": "/dev/nvidia0"}]}))
    inventory, findings = _replay(folder)
    assert inventory.cpu.model == "AMD EPYC 7451 24-Core Processor"  # type: ignore[attr-defined]
    problems = [f[2] for f in findings if f[0] == "probe.tool_output"]
    assert any(p.startswith("sysfs CPU topology: unreadable") for p in problems)
    assert any(p.startswith("host facts: unreadable") for p in problems)


def test_numactl_gives_numa_nodes_when_sysfs_hides_them(tmp_path: Path) -> None:
    # A container without /sys/devices/system/node: the Genoa box's numactl capture fills in.
    folder = _recording(
        tmp_path, {"numactl-hardware.txt": "numactl/asus-esc8000a-e12-genoa-2node.numactl-hardware.txt"}
    )
    shutil.rmtree(folder / "sysfs/sys/devices/system/node")
    inventory, _ = _replay(folder)
    nodes = inventory.cpu.numa_nodes  # type: ignore[attr-defined]
    assert [(n.id, n.cpus[0], n.cpus[-1]) for n in nodes] == [(0, 0, 31), (1, 32, 63)]
    assert [n.memory_total_bytes for n in nodes] == [193129 * 1024**2, 193477 * 1024**2]
    assert [n.distances for n in nodes] == [(10, 32), (32, 10)]
