"""Domain types: devices, inventory, links. Frozen dataclasses, no I/O."""

from tuxai.model.cpu import CpuTopology, NumaNode, format_cpulist, parse_cpulist
from tuxai.model.framework import Framework
from tuxai.model.gpu import Ecc, Gpu, MigDevice, PcieLink, Vendor
from tuxai.model.inventory import Host, HugePages, Inventory, ProbeProblem
from tuxai.model.links import Link, LinkKind, LinkMatrix
from tuxai.model.resources import Allocation, GpuShare, Request
from tuxai.model.system import DeviceNode, SystemFacts

__all__ = [
    "Allocation",
    "CpuTopology",
    "DeviceNode",
    "Ecc",
    "Framework",
    "Gpu",
    "GpuShare",
    "Host",
    "HugePages",
    "Inventory",
    "Link",
    "LinkKind",
    "LinkMatrix",
    "MigDevice",
    "NumaNode",
    "PcieLink",
    "ProbeProblem",
    "Request",
    "SystemFacts",
    "Vendor",
    "format_cpulist",
    "parse_cpulist",
]
