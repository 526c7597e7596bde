"""Rich rendering of a doctor report: host, CPUs, devices, links, frameworks, findings."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tuxai.doctor import Report, Severity
from tuxai.model.cpu import format_cpulist
from tuxai.model.inventory import Inventory
from tuxai.model.units import format_bytes

_STYLE = {Severity.OK: "green", Severity.WARN: "yellow", Severity.ERROR: "bold red"}


def _host(inventory: Inventory) -> Panel:
    host, cpu = inventory.host, inventory.cpu
    lines = [
        f"[bold]{host.hostname}[/]  {host.distro}  kernel {host.kernel}",
        f"memory {format_bytes(host.memory_total_bytes)} (available {format_bytes(host.memory_available_bytes)})",
        f"{cpu.model}: {cpu.sockets} socket(s) × {cpu.cores_per_socket} cores × {cpu.threads_per_core} threads "
        f"= {cpu.logical_cpus} CPUs online",
    ]
    return Panel("\n".join(lines), title=f"host · {inventory.source}", expand=False)


def _numa(inventory: Inventory) -> Table:
    table = Table(title="NUMA nodes", title_justify="left")
    for column in ("node", "CPUs", "memory", "distances", "GPUs"):
        table.add_column(column)
    for node in inventory.cpu.numa_nodes:
        gpus = ", ".join(str(g.index) for g in inventory.gpus_on_numa(node.id)) or "-"
        table.add_row(
            str(node.id),
            format_cpulist(node.cpus) or "-",
            format_bytes(node.memory_total_bytes),
            " ".join(str(d) for d in node.distances) or "-",
            gpus,
        )
    return table


def _devices(inventory: Inventory) -> Table:
    drivers = sorted(
        {
            f"{g.vendor.value} driver {g.driver_version}" + (f", CUDA {g.cuda_version}" if g.cuda_version else "")
            for g in inventory.gpus
            if g.driver_version
        }
    )
    table = Table(title="accelerators", title_justify="left", caption="; ".join(drivers) or None)
    for column in ("#", "name", "memory", "NUMA", "CC/gfx", "PCIe", "MIG"):
        table.add_column(column)
    for gpu in inventory.gpus:
        pcie = gpu.pcie
        link = "-"
        if pcie.current_gen or pcie.current_width:
            link = f"Gen{pcie.current_gen or '?'}x{pcie.current_width or '?'}"
        mig = "-" if not gpu.mig_enabled else f"{len(gpu.mig_devices)} inst."
        table.add_row(
            str(gpu.index),
            gpu.name.removeprefix("NVIDIA "),
            format_bytes(gpu.memory_total_bytes),
            "-" if gpu.numa_node is None else str(gpu.numa_node),
            gpu.compute_capability or gpu.gfx_target or "-",
            link,
            mig,
        )
    return table


def _identities(inventory: Inventory) -> Table:
    table = Table(title="device identities (for CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES)", title_justify="left")
    for column in ("#", "uuid", "PCI bus", "driver"):
        table.add_column(column, no_wrap=column != "driver")
    for gpu in inventory.gpus:
        table.add_row(str(gpu.index), gpu.uuid or "-", gpu.pci_bus_id or "-", gpu.driver_version or "-")
    return table


def _mig(inventory: Inventory) -> Table | None:
    rows = [(g, m) for g in inventory.gpus for m in g.mig_devices]
    if not rows:
        return None
    table = Table(title="MIG instances", title_justify="left")
    for column in ("GPU", "#", "profile", "memory", "SMs", "uuid"):
        table.add_column(column)
    for gpu, mig in rows:
        table.add_row(
            str(gpu.index),
            str(mig.index),
            mig.profile or "?",
            format_bytes(mig.memory_total_bytes),
            "-" if mig.sm_count is None else str(mig.sm_count),
            mig.uuid or "-",
        )
    return table


def _links(inventory: Inventory) -> Table | None:
    if inventory.links.size < 2:
        return None
    table = Table(title="topology (GPU ↔ GPU)", title_justify="left")
    table.add_column("")
    for index in range(inventory.links.size):
        table.add_column(f"GPU{index}", justify="center")
    for index, row in enumerate(inventory.links.links):
        table.add_row(f"GPU{index}", *(link.label for link in row))
    return table


def _frameworks(inventory: Inventory) -> Table | None:
    if not inventory.frameworks:
        return None
    table = Table(title="frameworks", title_justify="left")
    for column in ("name", "version", "build", "devices seen", "probe"):
        table.add_column(column)
    for fw in inventory.frameworks:
        if not fw.installed:
            table.add_row(fw.name, "[dim]not installed[/]", "", "", "")
            continue
        build = f"CUDA {fw.build_cuda}" if fw.build_cuda else (f"ROCm {fw.build_rocm}" if fw.build_rocm else "CPU")
        if not fw.gpu_support and not fw.build_cuda and not fw.build_rocm and fw.devices:
            build = "GPU"
        seen = "[red]error[/]" if fw.error else (", ".join(fw.devices) or "none")
        table.add_row(fw.name, fw.version or "?", build, seen, f"{fw.probe_s:.1f} s" if fw.probe_s else "")
    return table


def _findings(report: Report) -> Table | Text:
    if not report.findings:
        return Text("findings: none")
    with_remedy = any(f.remedy for f in report.findings)
    table = Table(title="findings", title_justify="left")
    for column in ("", "id", "finding", *(("remedy",) if with_remedy else ())):
        table.add_column(column, overflow="fold")
    for finding in report.findings:
        style = _STYLE[finding.severity]
        cells: list[RenderableType] = [Text(finding.severity.value, style=style), finding.id, finding.message]
        table.add_row(*cells, *((finding.remedy,) if with_remedy else ()))
    return table


def render_report(report: Report, console: Console) -> None:
    """Print the whole report."""
    inventory = report.inventory
    parts: list[RenderableType] = [_host(inventory), _numa(inventory)]
    if inventory.gpus:
        parts += [_devices(inventory), _identities(inventory)]
    for optional in (_mig(inventory), _links(inventory), _frameworks(inventory)):
        if optional is not None:
            parts.append(optional)
    parts.append(_findings(report))
    console.print(Group(*parts))
    summary = ", ".join(f"{report.count(s)} {s.value}" for s in Severity)
    console.print(f"[bold]doctor:[/] {summary}")
