"""Linux settings and access facts that decide whether ML work runs well here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceNode:
    """A device file such as ``/dev/nvidia0`` and whether this user may open it."""

    path: str
    readable: bool
    writable: bool


@dataclass(frozen=True)
class SystemFacts:
    """Kernel tunables, limits, modules and the environment a job inherits.

    ``None`` means "not exposed here" (a container without ``/sys`` entries);
    ``observed`` is False for a simulated machine, whose settings are unknown.
    ``memlock_limit_bytes`` is None when unlimited; ``memlock_known`` says it was read.
    """

    observed: bool = False
    thp_enabled: str | None = None
    thp_defrag: str | None = None
    swappiness: int | None = None
    numa_balancing: int | None = None
    cpufreq_driver: str | None = None
    cpu_governors: tuple[str, ...] = ()
    shm_total_bytes: int | None = None
    memlock_known: bool = False
    memlock_limit_bytes: int | None = None
    loaded_modules: tuple[str, ...] = ()
    device_nodes: tuple[DeviceNode, ...] = ()
    infiniband_devices: tuple[str, ...] = ()
    visible_devices_env: tuple[tuple[str, str], ...] = ()
    uid: int | None = None

    def env(self, name: str) -> str | None:
        """The value of a device-visibility variable (``CUDA_VISIBLE_DEVICES``) if set."""
        return dict(self.visible_devices_env).get(name)
