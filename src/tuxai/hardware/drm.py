"""AMD GPUs from ``/sys/class/drm`` when neither ``amd-smi`` nor ``rocm-smi`` is present."""

from __future__ import annotations

import re
from pathlib import Path

from tuxai.hardware.sysfs import read_text
from tuxai.model.gpu import PCIE_GEN_BY_GTS, Gpu, PcieLink, Vendor

AMD_PCI_VENDOR = "0x1002"


def _gen(text: str | None) -> int | None:
    match = re.match(r"^([\d.]+) GT/s", text or "")
    return PCIE_GEN_BY_GTS.get(float(match.group(1))) if match else None


def _number(text: str | None) -> int | None:
    return int(text) if text and text.lstrip("-").isdigit() else None


def read_drm_amd(root: Path) -> tuple[Gpu, ...]:
    """AMD GPUs under ``root/sys/class/drm/card*/device`` (vendor 0x1002), in card order."""
    base = root / "sys/class/drm"
    cards = sorted(
        (p for p in base.glob("card*") if re.fullmatch(r"card\d+", p.name)) if base.is_dir() else [],
        key=lambda p: int(p.name[4:]),
    )
    gpus: list[Gpu] = []
    for card in cards:
        device = f"/sys/class/drm/{card.name}/device"
        if read_text(root, f"{device}/vendor") != AMD_PCI_VENDOR:
            continue
        uevent = read_text(root, f"{device}/uevent") or ""
        slot = re.search(r"^PCI_SLOT_NAME=(\S+)$", uevent, re.MULTILINE)
        numa = _number(read_text(root, f"{device}/numa_node"))
        unique = read_text(root, f"{device}/unique_id")
        gpus.append(
            Gpu(
                vendor=Vendor.AMD,
                index=len(gpus),
                name=read_text(root, f"{device}/product_name") or f"AMD GPU {read_text(root, f'{device}/device')}",
                uuid=f"GPU-{unique}" if unique else None,
                memory_total_bytes=_number(read_text(root, f"{device}/mem_info_vram_total")),
                pci_bus_id=slot.group(1).lower() if slot else None,
                numa_node=numa if numa is not None and numa >= 0 else None,
                pcie=PcieLink(
                    current_gen=_gen(read_text(root, f"{device}/current_link_speed")),
                    max_gen=_gen(read_text(root, f"{device}/max_link_speed")),
                    current_width=_number(read_text(root, f"{device}/current_link_width")),
                    max_width=_number(read_text(root, f"{device}/max_link_width")),
                ),
            )
        )
    return tuple(gpus)
