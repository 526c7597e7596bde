"""``amd-smi static --json``: AMD GPUs, in the wrapped (``gpu_data``) or bare-array form.

Pure parser.
"""

from __future__ import annotations

import json
from typing import Any

from tuxai.errors import ToolOutputError
from tuxai.model.gpu import Gpu, PcieLink, Vendor

TOOL = "amd-smi static --json"
_UNIT_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def _section(entry: dict[str, Any], name: str) -> dict[str, Any]:
    value = entry.get(name)
    return value if isinstance(value, dict) else {}


def _known(value: Any) -> Any:
    return None if value in (None, "N/A", "") else value


def _bytes(value: Any) -> int | None:
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        return int(value["value"] * _UNIT_BYTES.get(str(value.get("unit", "B")).upper(), 1))
    return None


def _int(value: Any) -> int | None:
    value = _known(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = "".join(ch for ch in value if ch.isdigit())
        return int(digits) if digits else None
    return None


def _gpu(position: int, entry: dict[str, Any]) -> Gpu:
    asic, bus, board = _section(entry, "asic"), _section(entry, "bus"), _section(entry, "board")
    numa = _section(entry, "numa")
    power = _section(_section(entry, "limit"), "max_power").get("value")
    node = numa.get("node")
    bdf = _known(bus.get("bdf"))
    serial = _known(asic.get("asic_serial"))
    index = entry.get("gpu", position)
    return Gpu(
        vendor=Vendor.AMD,
        index=index if isinstance(index, int) and not isinstance(index, bool) else position,
        name=_known(asic.get("market_name")) or _known(board.get("product_name")) or "AMD GPU",
        uuid=f"GPU-{str(serial).removeprefix('0x').lower()}" if serial else None,
        memory_total_bytes=_bytes(_section(entry, "vram").get("size")),
        pci_bus_id=str(bdf).lower() if bdf else None,
        numa_node=node if isinstance(node, int) and node >= 0 else None,
        driver_version=_known(_section(entry, "driver").get("version")),
        gfx_target=_known(asic.get("target_graphics_version")),
        power_limit_w=float(power) if isinstance(power, int | float) and power > 0 else None,
        pcie=PcieLink(max_width=_int(bus.get("max_pcie_width")), max_gen=_int(bus.get("pcie_interface_version"))),
    )


def parse_amd_smi_static(text: str) -> tuple[Gpu, ...]:
    """``amd-smi static --json`` → AMD GPUs.

    ``[{"gpu": 0, "asic": {"market_name": "Strix Halo …", "target_graphics_version": "gfx1151"}, …}]``
    → ``(Gpu(name="Strix Halo …", gfx_target="gfx1151", …),)``; ``{"gpu_data": [...]}`` alike.

    Raises:
        ToolOutputError: the JSON is truncated, malformed or not a list of GPUs.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolOutputError(TOOL, f"the JSON is truncated or malformed ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("gpu_data"), list):
        data = data["gpu_data"]
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ToolOutputError(TOOL, "expected a list of GPUs or an object with gpu_data")
    return tuple(_gpu(i, entry) for i, entry in enumerate(data))
