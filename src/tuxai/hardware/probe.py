"""Build the ``Inventory`` from a ``Source``: every probe, merged, problems collected.

A tool that is absent contributes nothing; a tool that is present but fails
or prints something unreadable becomes a ``ProbeProblem`` (never a traceback).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuxai.errors import ProbeError, ToolOutputError
from tuxai.hardware.amd_smi import parse_amd_smi_static
from tuxai.hardware.drm import read_drm_amd
from tuxai.hardware.frameworks import frameworks_from_json, frameworks_to_json, probe_frameworks
from tuxai.hardware.hl_smi import parse_hl_smi
from tuxai.hardware.lscpu import LscpuReport, parse_lscpu_json
from tuxai.hardware.numactl import parse_numactl_hardware
from tuxai.hardware.nvidia_smi import parse_nvidia_smi_xml
from tuxai.hardware.nvidia_topo import Topology, parse_nvidia_topo
from tuxai.hardware.nvml import nvml_snapshot, parse_nvml_snapshot
from tuxai.hardware.rocm_smi import RocmSmiReport, parse_rocm_smi_json
from tuxai.hardware.source import FRAMEWORKS_FILE, NVML_FILE, TOOLS, Source
from tuxai.hardware.sysfs import pci_numa_node, read_cpu_topology, read_host
from tuxai.hardware.system import read_system_facts
from tuxai.model.cpu import NumaNode
from tuxai.model.framework import Framework
from tuxai.model.gpu import Gpu
from tuxai.model.inventory import Inventory, ProbeProblem
from tuxai.model.links import Link, LinkKind, LinkMatrix
from tuxai.model.system import SystemFacts


@dataclass(frozen=True)
class ProbeOptions:
    """What to probe and how long to wait."""

    frameworks: bool = True
    python: str = ""
    framework_timeout_s: float = 15.0


class _Collector:
    """Runs tools through the source and keeps the problems they cause."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[ProbeProblem] = []

    def text(self, file: str) -> str | None:
        run = self.source.tool(file)
        if run.error is not None:
            self.problems.append(ProbeProblem(" ".join(TOOLS[file]), run.error))
            return None
        return run.output

    def problem(self, exc: ProbeError) -> None:
        tool = exc.tool if isinstance(exc, ToolOutputError) else "probe"
        problem = exc.problem if isinstance(exc, ToolOutputError) else exc.message
        self.problems.append(ProbeProblem(tool, problem))


def _lscpu(collector: _Collector) -> LscpuReport | None:
    text = collector.text("lscpu-J.json")
    if not text:
        return None
    try:
        return parse_lscpu_json(text)
    except ToolOutputError as exc:
        collector.problem(exc)
        return None


def _numactl(collector: _Collector) -> tuple[NumaNode, ...]:
    text = collector.text("numactl-hardware.txt")
    if not text:
        return ()
    try:
        return parse_numactl_hardware(text)
    except ToolOutputError as exc:
        collector.problem(exc)
        return ()


def _nvidia(collector: _Collector) -> tuple[list[Gpu], Topology | None]:
    source = collector.source
    gpus: list[Gpu] = []
    try:
        snapshot = nvml_snapshot() if source.live else source.saved(NVML_FILE)
        if snapshot is not None:
            source.save(NVML_FILE, snapshot)
            gpus = list(parse_nvml_snapshot(snapshot))
    except ToolOutputError as exc:
        collector.problem(exc)
    if not gpus:
        text = collector.text("nvidia-smi-q-x.xml")
        if text is not None:
            try:
                gpus = list(parse_nvidia_smi_xml(text).gpus)
            except ToolOutputError as exc:
                collector.problem(exc)
    if not gpus:
        return [], None
    text = collector.text("nvidia-smi-topo-m.txt")
    if not text:
        return gpus, None
    try:
        topology = parse_nvidia_topo(text)
    except ToolOutputError as exc:
        collector.problem(exc)
        return gpus, None
    if topology.links.size != len(gpus):
        collector.problems.append(
            ProbeProblem(
                "nvidia-smi topo -m",
                f"the matrix has {topology.links.size} GPUs but the driver reports {len(gpus)}; links ignored",
                severity="warn",
            )
        )
        return gpus, None
    return gpus, topology


def _amd(collector: _Collector) -> tuple[list[Gpu], RocmSmiReport | None]:
    gpus: list[Gpu] = []
    text = collector.text("amd-smi-static.json")
    if text is not None:
        try:
            gpus = list(parse_amd_smi_static(text))
        except ToolOutputError as exc:
            collector.problem(exc)
    report = None
    text = collector.text("rocm-smi-showallinfo.json")
    if text is not None:
        try:
            report = parse_rocm_smi_json(text)
        except ToolOutputError as exc:
            collector.problem(exc)
    if report is not None:
        if not gpus:
            gpus = list(report.gpus)
        if report.topology_devices > len(report.gpus):
            collector.problems.append(
                ProbeProblem(
                    "rocm-smi --showallinfo --json",
                    f"its topology describes {report.topology_devices} devices but only "
                    f"{len(report.gpus)} card(s) answered; the others may be hidden or failing",
                    severity="warn",
                )
            )
    if not gpus:
        gpus = list(read_drm_amd(collector.source.root))
    return gpus, report


def _gaudi(collector: _Collector) -> list[Gpu]:
    text = collector.text("hl-smi.txt")
    if text is None:
        return []
    try:
        return list(parse_hl_smi(text).gpus)
    except ToolOutputError as exc:
        collector.problem(exc)
        return []


def _block_links(blocks: list[tuple[list[Gpu], LinkMatrix | None]]) -> LinkMatrix:
    """One matrix over all GPUs: each vendor's own links, PCIe by NUMA node elsewhere."""
    gpus = [g for block, _ in blocks for g in block]
    owner: list[tuple[int, int]] = []
    for number, (block, _) in enumerate(blocks):
        owner += [(number, i) for i in range(len(block))]
    rows = []
    for a, gpu_a in enumerate(gpus):
        row = []
        for b, gpu_b in enumerate(gpus):
            (block_a, local_a), (block_b, local_b) = owner[a], owner[b]
            matrix = blocks[block_a][1]
            if a == b:
                row.append(Link(LinkKind.SELF))
            elif block_a == block_b and matrix is not None and matrix.size == len(blocks[block_a][0]):
                row.append(matrix.between(local_a, local_b))
            elif gpu_a.numa_node is not None and gpu_a.numa_node == gpu_b.numa_node:
                row.append(Link(LinkKind.NODE))
            else:
                row.append(Link(LinkKind.SYS))
        rows.append(tuple(row))
    return LinkMatrix(tuple(rows))


def _system_facts(collector: _Collector, root: Path, facts: dict[str, Any]) -> SystemFacts:
    try:
        return read_system_facts(root, facts)
    except (ValueError, TypeError, KeyError) as exc:  # a damaged host-facts.json
        collector.problems.append(ProbeProblem("host facts", f"unreadable ({exc}); Linux settings not judged"))
        return SystemFacts()


def collect_inventory(source: Source, options: ProbeOptions | None = None) -> Inventory:
    """Probe everything the source offers and merge it into one ``Inventory``."""
    options = options or ProbeOptions()
    collector = _Collector(source)
    root = source.root
    lscpu, numactl = _lscpu(collector), _numactl(collector)
    try:
        cpu = read_cpu_topology(root, lscpu, numactl)
    except ValueError as exc:  # a malformed cpulist or distance file (a damaged recording)
        collector.problems.append(
            ProbeProblem("sysfs CPU topology", f"unreadable ({exc}); CPUs taken from numactl and lscpu")
        )
        cpu = read_cpu_topology(Path("/nonexistent"), lscpu, numactl)  # an empty root: the tools' answers only
    nvidia, topology = _nvidia(collector)
    if topology is not None:
        nvidia = [
            replace(gpu, numa_node=affinity.numa_nodes[0])
            if gpu.numa_node is None and len(affinity.numa_nodes) == 1
            else gpu
            for gpu, affinity in zip(nvidia, topology.affinity, strict=True)
        ]
    amd, rocm = _amd(collector)
    gaudi = _gaudi(collector)
    blocks = [
        (nvidia, topology.links if topology else None),
        (amd, rocm.links if rocm else None),
        (gaudi, None),
    ]
    blocks = [
        ([g if g.numa_node is not None else replace(g, numa_node=pci_numa_node(root, g.pci_bus_id)) for g in b], m)
        for b, m in blocks
    ]
    frameworks: tuple[Framework, ...] = ()
    if options.frameworks:
        try:
            if source.live:
                frameworks = probe_frameworks(options.python, options.framework_timeout_s)
                source.save(FRAMEWORKS_FILE, frameworks_to_json(frameworks))
            else:
                frameworks = frameworks_from_json(source.saved(FRAMEWORKS_FILE))
        except ToolOutputError as exc:
            collector.problem(exc)
    try:
        facts = source.facts()
    except ToolOutputError as exc:
        collector.problem(exc)
        facts = {}
    system = _system_facts(collector, root, facts)
    return Inventory(
        host=read_host(root),
        cpu=cpu,
        gpus=tuple(g for block, _ in blocks for g in block),
        links=_block_links(blocks),
        frameworks=frameworks,
        problems=tuple(collector.problems),
        system=system,
        source=source.name,
    )
