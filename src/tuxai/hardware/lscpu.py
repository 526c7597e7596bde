"""``lscpu -J``: sockets, cores, threads and NUMA CPU lists. Pure parser."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tuxai.errors import ToolOutputError
from tuxai.model.cpu import parse_cpulist

TOOL = "lscpu -J"
_NODE = re.compile(r"^NUMA node(\d+) CPU\(s\):$")


@dataclass(frozen=True)
class LscpuReport:
    """What ``lscpu`` says of the processors."""

    model: str | None
    cpus: int | None
    online_cpus: tuple[int, ...]
    sockets: int | None
    cores_per_socket: int | None
    threads_per_core: int | None
    numa_cpus: dict[int, tuple[int, ...]]
    max_mhz: float | None


def _fields(data: object) -> dict[str, str]:
    """Flatten both the flat and the nested (``children``) forms of ``lscpu -J``."""
    out: dict[str, str] = {}
    if not isinstance(data, dict) or not isinstance(data.get("lscpu"), list):
        raise ToolOutputError(TOOL, 'expected an object with an "lscpu" list')
    stack = list(data["lscpu"])
    while stack:
        entry = stack.pop(0)
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("field"), str) and isinstance(entry.get("data"), str):
            out.setdefault(entry["field"], entry["data"])
        stack.extend(entry.get("children") or [])
    return out


def parse_lscpu_json(text: str) -> LscpuReport:
    """``lscpu -J`` → model, counts and NUMA CPU lists.

    ``{"lscpu": [{"field": "Socket(s):", "data": "2"}, {"field": "NUMA node0 CPU(s):", "data": "0-5,48-53"}]}``
    → ``LscpuReport(sockets=2, numa_cpus={0: (0, …, 5, 48, …, 53)}, …)``.

    Raises:
        ToolOutputError: the JSON is truncated or malformed.
    """
    try:
        fields = _fields(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ToolOutputError(TOOL, f"the JSON is truncated or malformed ({exc})") from None

    def number(name: str) -> int | None:
        value = fields.get(name)
        return int(value) if value and value.isdigit() else None

    numa: dict[int, tuple[int, ...]] = {}
    try:
        for name, value in fields.items():
            match = _NODE.match(name)
            if match:
                numa[int(match.group(1))] = parse_cpulist(value)
        online = fields.get("On-line CPU(s) list:")
        online_cpus = parse_cpulist(online) if online else ()
        max_mhz = float(fields["CPU max MHz:"]) if fields.get("CPU max MHz:") else None
    except ValueError as exc:
        raise ToolOutputError(TOOL, f"a CPU list or number is malformed ({exc})") from None
    return LscpuReport(
        model=fields.get("Model name:"),
        cpus=number("CPU(s):"),
        online_cpus=online_cpus,
        sockets=number("Socket(s):"),
        cores_per_socket=number("Core(s) per socket:"),
        threads_per_core=number("Thread(s) per core:"),
        numa_cpus=numa,
        max_mhz=max_mhz,
    )
