"""Quantities as people write them: bytes (``80GiB``, ``512 MB``, ``19968 MiB``) and durations
(``90s``, ``30m``, ``4h``, ``2d``, ``1:30:00``, Slurm's ``2-12:00:00``)."""

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


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"^\s*(?:([0-9]+)-)?([0-9]+(?::[0-9]+){0,2})\s*$")  # [D-]H[:M[:S]] or M:S, as Slurm
DURATION_FORMS = "90s, 30m, 4h, 2d, 1:30:00 or 2-12:00:00"


def parse_duration(text: str | float | int, bare_s: float = 1.0) -> float:
    """Seconds of a duration: ``"90s"`` → 90.0, ``"30m"`` → 1800.0, ``"1:30:00"`` → 5400.0.

    A bare number counts ``bare_s`` seconds each: ``parse_duration("90", bare_s=60)`` → 5400.0
    (Slurm's ``--time 90`` is 90 minutes). Slurm's clock forms: ``MM:SS``, ``HH:MM:SS``,
    ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS`` (``"1-12"`` → 129600.0).

    Raises:
        ValueError: not a duration, negative or endless.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        value = float(text) * bare_s
    elif (match := _DURATION.match(text)) is not None:
        value = float(match.group(1)) * (_SECONDS[match.group(2)] if match.group(2) else bare_s)
    elif (clock := _CLOCK.match(text)) is not None and (clock.group(1) or ":" in text):
        days, parts = clock.group(1), [int(p) for p in clock.group(2).split(":")]
        if days is not None:  # D-H, D-H:M, D-H:M:S: hours come first
            parts += [0] * (3 - len(parts))
        elif len(parts) == 2:  # M:S
            parts.insert(0, 0)
        total = int(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
        value = float(total) if total < 10**300 else math.inf
    else:
        raise ValueError(f"{text!r} is not a duration (use {DURATION_FORMS})")
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite duration")
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value
