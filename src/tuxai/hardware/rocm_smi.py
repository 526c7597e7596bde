"""``rocm-smi --showallinfo --json``: AMD GPUs and their topology (ROCm 5 and 6 keys).

Pure parser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tuxai.errors import ToolOutputError
from tuxai.model.gpu import PCIE_GEN_BY_GTS, Gpu, PcieLink, Vendor
from tuxai.model.links import Link, LinkKind, LinkMatrix

TOOL = "rocm-smi --showallinfo --json"
_PCIE = re.compile(r"([\d.]+)GT/s x(\d+)")
_PAIR = re.compile(r"^\(Topology\) (Weight|Hops|Link type) between DRM devices (\d+) and (\d+)$")


@dataclass(frozen=True)
class RocmSmiReport:
    """GPUs, driver version and the pairwise topology the system block describes."""

    driver_version: str | None
    gpus: tuple[Gpu, ...]
    links: LinkMatrix
    topology_devices: int


def _get(card: dict[str, Any], *keys: str) -> str | None:
    """The first present, meaningful value among key spellings of ROCm 5 and 6."""
    lowered = {k.lower(): v for k, v in card.items()}
    for key in keys:
        value = lowered.get(key.lower())
        if isinstance(value, str) and value.strip() and value.strip() not in {"N/A", "None"}:
            return value.strip()
    return None


def _pcie_gen(text: str | None) -> tuple[int | None, int | None]:
    match = _PCIE.search(text or "")
    if not match:
        return None, None
    return PCIE_GEN_BY_GTS.get(float(match.group(1))), int(match.group(2))


def _pcie(card: dict[str, Any]) -> PcieLink:
    current_gen, current_width = _pcie_gen(_get(card, "pcie clock level"))
    # The numbered keys list the DPM levels; the PCIe ones read "16.0GT/s x16".
    levels = [_pcie_gen(v) for k, v in card.items() if k.isdigit() and isinstance(v, str)]
    gens = [g for g, _ in levels if g is not None]
    widths = [w for _, w in levels if w is not None]
    return PcieLink(
        current_gen=current_gen,
        max_gen=max(gens) if gens else None,
        current_width=current_width,
        max_width=max(widths) if widths else None,
    )


def _uuid(card: dict[str, Any]) -> str | None:
    unique = _get(card, "Unique ID")
    if unique is None:
        return None
    try:
        return f"GPU-{int(unique, 16):016x}"
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(float(text))
    except ValueError:
        return None


def _gpu(position: int, card: dict[str, Any], driver: str | None) -> Gpu:
    name = _get(card, "Card Series", "Device Name", "Card Model") or "AMD GPU"
    power = _get(card, "Max Graphics Package Power (W)")
    bus = _get(card, "PCI Bus")
    return Gpu(
        vendor=Vendor.AMD,
        index=position,
        name=name,
        uuid=_uuid(card),
        memory_total_bytes=_int(_get(card, "VRAM Total Memory (B)")),
        pci_bus_id=bus.lower() if bus else None,
        numa_node=_int(_get(card, "(Topology) Numa Node")),
        driver_version=driver,
        gfx_target=_get(card, "GFX Version"),
        power_limit_w=float(power) if power else None,
        pcie=_pcie(card),
    )


def _links(system: dict[str, Any], count: int) -> tuple[LinkMatrix, int]:
    pairs: dict[tuple[int, int], dict[str, str]] = {}
    for key, value in system.items():
        match = _PAIR.match(key)
        if match and isinstance(value, str):
            a, b = int(match.group(2)), int(match.group(3))
            pairs.setdefault((min(a, b), max(a, b)), {})[match.group(1)] = value.strip()
    described = 1 + max((b for _, b in pairs), default=-1) if pairs else 0
    rows = []
    for a in range(count):
        row = []
        for b in range(count):
            if a == b:
                row.append(Link(LinkKind.SELF))
                continue
            info = pairs.get((min(a, b), max(a, b)), {})
            kind = LinkKind.XGMI if info.get("Link type", "").upper() == "XGMI" else LinkKind.PCIE
            row.append(Link(kind, hops=_int(info.get("Hops")), weight=_int(info.get("Weight"))))
        rows.append(tuple(row))
    return LinkMatrix(tuple(rows)), described


def parse_rocm_smi_json(text: str) -> RocmSmiReport:
    """``rocm-smi --showallinfo --json`` → AMD GPUs, driver and link matrix.

    ``{"card0": {"Card series": "Arcturus GL-XL [Instinct MI100]", …}, "system": {…}}``
    → ``RocmSmiReport(gpus=(Gpu(name="Arcturus GL-XL [Instinct MI100]", …),), …)``.

    Raises:
        ToolOutputError: the JSON is truncated, malformed or has no cards.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolOutputError(TOOL, f"the JSON is truncated or malformed ({exc})") from None
    if not isinstance(data, dict):
        raise ToolOutputError(TOOL, "expected a JSON object of cards")
    cards = sorted(
        ((int(k[4:]), v) for k, v in data.items() if re.fullmatch(r"card\d+", k) and isinstance(v, dict)),
        key=lambda item: item[0],
    )
    system = data.get("system") if isinstance(data.get("system"), dict) else {}
    assert isinstance(system, dict)
    driver = _get(system, "Driver version")
    gpus = tuple(_gpu(i, card, driver) for i, (_, card) in enumerate(cards))
    links, described = _links(system, len(gpus))
    return RocmSmiReport(driver_version=driver, gpus=gpus, links=links, topology_devices=described)
