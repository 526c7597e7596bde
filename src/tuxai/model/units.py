"""Byte quantities as people write them: ``80GiB``, ``512 MB``, ``19968 MiB``."""

from __future__ import annotations

import math
import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(text: str | int) -> int:
    """``"80GiB"`` → ``85899345920``; plain integers are bytes.

    Raises:
        ValueError: the text is not a number with a known unit, or the count is negative or endless.
    """
    if isinstance(text, bool) or (isinstance(text, int) and text < 0):
        raise ValueError(f"not a byte quantity: {text!r} (a count of bytes is 0 or more)")
    if isinstance(text, int):
        return text
    match = _QUANTITY.match(text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a byte quantity: {text!r} (write e.g. 80GiB, 512MiB or 16GB)")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(value):
        raise ValueError(f"not a byte quantity: {text!r} (too large)")
    return int(value)


def format_bytes(count: int | None) -> str:
    """``85899345920`` → ``"80.0 GiB"``; ``None`` → ``"?"``."""
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
