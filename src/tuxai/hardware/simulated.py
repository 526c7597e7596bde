"""A simulated ``Inventory`` from YAML, for GPU-less machines, tests and demos.

The format is documented in ``docs/inventory.md``; examples live in
``examples/inventories/``. Loading is pure (``inventory_from_yaml(text)``);
``load_inventory_file`` reads the file.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuxai.errors import InventoryError, ToolOutputError
from tuxai.hardware.nvidia_smi import SM_PER_MIG_SLICE, compute_capability_for
from tuxai.hardware.nvidia_topo import parse_link, parse_nvidia_topo
from tuxai.model.cpu import CpuTopology, NumaNode, parse_cpulist
from tuxai.model.gpu import Ecc, Gpu, MigDevice, PcieLink, Vendor
from tuxai.model.inventory import Host, Inventory
from tuxai.model.links import Link, LinkKind, LinkMatrix
from tuxai.model.mapping import MappingReader, load_mapping

_NAMESPACE = uuid.UUID("6f1c3a52-55c1-4a5e-9d6b-7475786169a1")
_MIG_PROFILE = re.compile(r"^(\d)g\.(\d+)gb$")
_ARCHITECTURE = {"8.0": "Ampere", "8.6": "Ampere", "8.9": "Ada Lovelace", "9.0": "Hopper", "10.0": "Blackwell"}


_HINT = "see docs/inventory.md and examples/inventories/ for the format"


def _reader(origin: str, path: str, data: Any) -> MappingReader:
    """Typed reads of one mapping of the file (``tuxai.model.mapping``): errors name the field."""
    return MappingReader(data, origin, path=path, error=InventoryError, hint=_HINT)


def _cpu(cpu: MappingReader, memory_bytes: int | None) -> CpuTopology:
    sockets = cpu.integer("sockets", 1, minimum=1) or 1
    cores = cpu.integer("cores_per_socket", 8, minimum=1) or 1
    threads = cpu.integer("threads_per_core", 1, minimum=1) or 1
    total_cores = sockets * cores
    online = tuple(range(total_cores * threads))
    explicit = cpu.data.get("numa")
    nodes: list[NumaNode] = []
    if isinstance(explicit, list):
        for position, entry in enumerate(explicit):
            item = _reader(cpu.origin, f"{cpu.where('numa')}[{position}]", entry)
            try:
                cpus = parse_cpulist(item.text("cpus") or "")
            except ValueError:
                raise item.fail("cpus", "a CPU list such as 0-15,64-79") from None
            nodes.append(NumaNode(item.integer("id", position) or position, cpus, item.size("memory")))
    else:
        count = cpu.integer("numa_nodes", sockets, minimum=1) or 1
        if count % sockets or cores % (count // sockets):
            raise cpu.fail("numa_nodes", f"a multiple of sockets ({sockets}) that divides the cores")
        per_node = total_cores // count
        per_socket = count // sockets
        for node in range(count):
            first = range(node * per_node, (node + 1) * per_node)
            cpus = tuple(c + t * total_cores for t in range(threads) for c in first)
            distances = tuple(
                10 if other == node else (12 if other // per_socket == node // per_socket else 32)
                for other in range(count)
            )
            nodes.append(
                NumaNode(node, tuple(sorted(cpus)), memory_bytes // count if memory_bytes else None, distances)
            )
    return CpuTopology(
        model=cpu.text("model", "Simulated CPU") or "Simulated CPU",
        sockets=sockets,
        cores_per_socket=cores,
        threads_per_core=threads,
        online_cpus=online,
        numa_nodes=tuple(nodes),
    )


def _mig(group: MappingReader, spec: Any, where: str, architecture: str | None, seed: str) -> tuple[MigDevice, ...]:
    profiles: list[str] = []
    if isinstance(spec, dict):
        for name, count in spec.items():
            if not isinstance(count, int) or count < 0:
                raise InventoryError(f"{group.origin}: {where}.{name} must be a count, got {count!r}", hint=_HINT)
            profiles += [str(name)] * count
    elif isinstance(spec, list):
        profiles = [str(p) for p in spec]
    else:
        raise InventoryError(f"{group.origin}: {where} must map profile to count, e.g. {{1g.10gb: 7}}", hint=_HINT)
    devices = []
    for index, profile in enumerate(profiles):
        match = _MIG_PROFILE.match(profile)
        if not match:
            raise InventoryError(
                f"{group.origin}: {where}: unknown MIG profile {profile!r}", hint=f"write e.g. 1g.10gb; {_HINT}"
            )
        slices = int(match.group(1))
        devices.append(
            MigDevice(
                index=index,
                profile=profile,
                memory_total_bytes=int(match.group(2)) * 1024**3,
                sm_count=slices * SM_PER_MIG_SLICE[architecture] if architecture in SM_PER_MIG_SLICE else None,
                uuid=f"MIG-{uuid.uuid5(_NAMESPACE, f'{seed}/mig{index}')}",
                gpu_instance_id=index,
                compute_instance_id=0,
            )
        )
    return tuple(devices)


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _gpus(doc: MappingReader, hostname: str, numa_count: int) -> list[Gpu]:
    raw = doc.data.get("gpus") or []
    groups = raw if isinstance(raw, list) else [raw]
    gpus: list[Gpu] = []
    for position, entry in enumerate(groups):
        group = _reader(doc.origin, f"gpus[{position}]", entry)
        vendor_text = group.text("vendor", "nvidia") or "nvidia"
        try:
            vendor = Vendor(vendor_text)
        except ValueError:
            raise group.fail("vendor", f"one of {', '.join(v.value for v in Vendor)}") from None
        count = group.integer("count", 1, minimum=1) or 1
        name = group.text("model") or group.text("name")
        if name is None:
            raise group.fail("model", "the product name, e.g. NVIDIA A100-SXM4-80GB")
        numa = group.data.get("numa", 0)
        numa_list = numa if isinstance(numa, list) else [numa] * count
        if len(numa_list) != count or not all(isinstance(n, int) and 0 <= n < numa_count for n in numa_list):
            raise group.fail("numa", f"a NUMA node below {numa_count} or a list of {count} of them")
        minors = group.data.get("minor_number")  # the N of /dev/nvidiaN: device rules need it
        minor_list: list[int | None] = [None] * count
        if minors is not None:
            minor_list = minors if isinstance(minors, list) else [minors]
            if len(minor_list) != count or len(set(minor_list)) != count or not all(map(_natural, minor_list)):
                raise group.fail("minor_number", f"a list of {count} distinct integers ≥ 0, one per GPU")
        capability = group.text("compute_capability") or (
            compute_capability_for(name) if vendor is Vendor.NVIDIA else None
        )
        architecture = group.text("architecture") or _ARCHITECTURE.get(capability or "")
        mig = group.data.get("mig") or {}
        if not isinstance(mig, dict):
            raise group.fail("mig", "a mapping of GPU index (within the group) to profiles")
        unknown = [k for k in mig if not isinstance(k, int) or not 0 <= k < count]
        if unknown:
            raise group.fail("mig", f"keyed by GPU index 0..{count - 1} within the group")
        power = group.data.get("power_limit_w")
        pcie_gen = group.integer("pcie_gen")
        for local in range(count):
            index = len(gpus)
            seed = f"{hostname}/gpu{index}"
            gpus.append(
                Gpu(
                    vendor=vendor,
                    index=index,
                    name=name,
                    uuid=f"GPU-{uuid.uuid5(_NAMESPACE, seed)}",
                    memory_total_bytes=group.size("memory"),
                    pci_bus_id=f"0000:{0x10 + index * 0x10:02x}:00.0",
                    minor_number=minor_list[local],
                    numa_node=numa_list[local],
                    driver_version=group.text("driver"),
                    cuda_version=group.text("cuda") if vendor is Vendor.NVIDIA else None,
                    rocm_version=group.text("rocm") if vendor is Vendor.AMD else None,
                    compute_capability=capability,
                    gfx_target=group.text("gfx_target"),
                    architecture=architecture,
                    persistence_mode=True if vendor is Vendor.NVIDIA else None,
                    power_limit_w=float(power) if isinstance(power, int | float) else None,
                    performance_state="P0" if vendor is Vendor.NVIDIA else None,
                    pcie=PcieLink(pcie_gen, pcie_gen, 16, 16),
                    ecc=Ecc(enabled=True, volatile_uncorrectable=0, aggregate_uncorrectable=0),
                    mig_enabled=(local in mig) if vendor is Vendor.NVIDIA else None,
                    mig_devices=_mig(group, mig[local], f"gpus[{position}].mig.{local}", architecture, seed)
                    if local in mig
                    else (),
                )
            )
    return gpus


def _links(doc: MappingReader, gpus: list[Gpu]) -> LinkMatrix:
    spec = doc.data.get("links", "pcie")
    count = len(gpus)
    if not isinstance(spec, str):
        raise doc.fail("links", "NV<n>, XGMI or pcie")
    if spec.lower() == "pcie":
        return LinkMatrix(
            tuple(
                tuple(
                    Link(LinkKind.SELF)
                    if a == b
                    else Link(LinkKind.NODE if gpus[a].numa_node == gpus[b].numa_node else LinkKind.SYS)
                    for b in range(count)
                )
                for a in range(count)
            )
        )
    try:
        link = Link(LinkKind.XGMI, hops=1, weight=15) if spec.upper() == "XGMI" else parse_link(spec)
    except ValueError:
        raise doc.fail("links", "NV<n>, XGMI or pcie") from None
    return LinkMatrix(tuple(tuple(Link(LinkKind.SELF) if a == b else link for b in range(count)) for a in range(count)))


def inventory_from_yaml(text: str, origin: str = "<inventory>") -> Inventory:
    """A simulated inventory from its YAML text.

    ``"host: {hostname: box}\\ngpus: {model: NVIDIA A100-SXM4-80GB, count: 8}\\nlinks: NV12"``
    → ``Inventory(gpus=8 × A100, links all NV12, …)``.

    Raises:
        InventoryError: the YAML is malformed or a field has a bad value (the message names it).
    """
    doc = load_mapping(text, origin, InventoryError, _HINT)
    known = {"name", "host", "cpu", "gpus", "links", "topology", "processes"}
    unknown = sorted(set(doc.data) - known)
    if unknown:
        raise InventoryError(
            f"{origin}: unknown keys {', '.join(unknown)}", hint=f"known keys: {', '.join(sorted(known))}"
        )
    host_reader = doc.child("host")
    hostname = host_reader.text("hostname", Path(origin).stem) or "simulated"
    memory = host_reader.size("memory")
    host = Host(
        hostname=hostname,
        kernel=host_reader.text("kernel", "simulated") or "simulated",
        distro=host_reader.text("distro", "simulated") or "simulated",
        memory_total_bytes=memory,
        memory_available_bytes=memory,
    )
    cpu = _cpu(doc.child("cpu"), memory)
    gpus = _gpus(doc, hostname, len(cpu.numa_nodes))
    topology = doc.data.get("topology")
    if topology is not None:
        if not isinstance(topology, str):
            raise doc.fail("topology", "the text of `nvidia-smi topo -m`")
        try:
            parsed = parse_nvidia_topo(topology)
        except ToolOutputError as exc:
            raise InventoryError(f"{origin}: topology: {exc.problem}", hint=_HINT) from None
        if parsed.links.size != len(gpus):
            raise InventoryError(
                f"{origin}: topology has {parsed.links.size} GPUs but gpus declares {len(gpus)}", hint=_HINT
            )
        links = parsed.links
    else:
        links = _links(doc, gpus)
    # Checked with the rest of the file: a bad entry fails the load.
    for declared in simulated_processes(text, origin):
        if declared.gpu >= len(gpus):
            raise InventoryError(f"{origin}: processes: no GPU {declared.gpu} (it has {len(gpus)})", hint=_HINT)
        if declared.mig is not None and declared.mig not in {m.index for m in gpus[declared.gpu].mig_devices}:
            raise InventoryError(
                f"{origin}: processes: GPU {declared.gpu} has no MIG instance {declared.mig}", hint=_HINT
            )
    return Inventory(host=host, cpu=cpu, gpus=tuple(gpus), links=links, source=f"simulated:{origin}")


@dataclass(frozen=True)
class DeclaredProcess:
    """A compute process a simulated GPU runs that tuxai did not start (a GPU "busy outside tuxai")."""

    gpu: int
    pid: int
    user: str | None = None  # shown when /proc does not show the pid
    memory_bytes: int | None = None
    mig: int | None = None  # the MIG instance (its index on the GPU) it runs on; None: the whole GPU


def simulated_processes(text: str, origin: str = "<inventory>") -> tuple[DeclaredProcess, ...]:
    """The ``processes:`` of a simulated inventory (``mig``: the instance, on a MIG GPU):
    ``[{gpu: 3, pid: 4242, user: alice, memory: 2GiB}]``
    → ``(DeclaredProcess(3, 4242, "alice", 2147483648),)``.

    Raises:
        InventoryError: an entry is not a mapping, or a field has a bad value (the message names it).
    """
    doc = load_mapping(text, origin, InventoryError, _HINT)
    raw = doc.data.get("processes") or []
    if not isinstance(raw, list):
        raise doc.fail("processes", "a list of {gpu, pid, user, memory}")
    declared = []
    for position, entry in enumerate(raw):
        item = _reader(origin, f"processes[{position}]", entry)
        gpu, pid = item.integer("gpu"), item.integer("pid", minimum=1)
        if gpu is None or pid is None:
            raise item.fail("gpu" if gpu is None else "pid", "an integer (the GPU's index, the process id)")
        declared.append(DeclaredProcess(gpu, pid, item.text("user"), item.size("memory"), item.integer("mig")))
    return tuple(declared)


def load_simulated_processes(path: Path) -> tuple[DeclaredProcess, ...]:
    """``simulated_processes`` of a file (``load_inventory_file`` checked it already).

    Raises:
        InventoryError: the file is unreadable or malformed.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise InventoryError(f"cannot read inventory file {path}: {exc.strerror}") from None
    return simulated_processes(text, str(path))


def load_inventory_file(path: Path) -> Inventory:
    """Read and load a simulated inventory file.

    Raises:
        InventoryError: the file is missing, unreadable or malformed.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise InventoryError(
            f"cannot read inventory file {path}: {exc.strerror}", hint="check --inventory / TUXAI_INVENTORY"
        ) from None
    return inventory_from_yaml(text, str(path))
