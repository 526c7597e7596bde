"""What an ML framework installed here sees."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    """One framework as its own process reported it.

    ``installed`` is False when the package is absent; ``error`` holds why a
    probe failed (import crash, timeout) in words.
    """

    name: str
    installed: bool
    version: str | None = None
    build_cuda: str | None = None
    build_rocm: str | None = None
    gpu_support: bool = False
    devices: tuple[str, ...] = ()
    error: str | None = None
    probe_s: float | None = None
