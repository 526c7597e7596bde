"""The one rule that plans a job's cgroups, on this machine (``daemon.launch``) and on a cluster node
(``executor.node_cgroups``): which controllers, which limits, systemd's scope or cgroupfs directories.

Every job gets a group where one can be made: on v1 the pids controller at least (0.1 ms: it holds every
process of the job and caps their number); memory and cpu when there is a limit to enforce (CPU pinning
already holds a job to its CPUs); devices when the job is fenced to its GPUs' device files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tuxai.executor import systemd
from tuxai.executor.cgroups import nvidia_device_rules, plan
from tuxai.executor.local import CgroupHost
from tuxai.model.cgroup import CgroupPlan


def limited(memory_bytes: int, every_job: bool) -> bool:
    """The job's group enforces limits (memory, CPUs' worth of time): it asked for memory, or the daemon
    limits every job (``cgroup_every_job``).

    >>> limited(0, False), limited(2**20, False), limited(0, True)
    (False, True, True)
    """
    return bool(memory_bytes or every_job)


def plan_groups(
    host: CgroupHost,
    name: str,
    enforce: bool,
    limits: tuple[int, int, Sequence[int], int],
    minors: Sequence[int] = (),
    proc_devices: Callable[[], str] = lambda: "",
) -> tuple[CgroupPlan, tuple[str, ...]]:
    """Group ``name``'s plan on ``host``, and its v1 device rules (none on systemd: its fence is a property).

    ``enforce``: ``limited``'s answer; ``limits``: memory bytes, CPUs' worth of time (enforced only with
    ``enforce``), the pinned CPUs, the tasks' cap; ``minors``: the NVIDIA devices the job may open (none:
    no fence); ``proc_devices``: ``/proc/devices``' text, read only for a systemd fence.

    >>> from tuxai.hardware.cgroups import CgroupSupport
    >>> v1 = CgroupSupport(1, {c: f"/cg/{c}/tuxai" for c in ("memory", "cpu", "pids", "devices")})
    >>> sorted(plan_groups(v1, "j", False, (0, 2, (), 100))[0].dirs)
    ['pids']
    >>> sorted(plan_groups(v1, "j", True, (2**20, 2, (), 100), (0,))[0].dirs)
    ['cpu', 'devices', 'memory', 'pids']
    """
    memory_bytes, cpu_quota, cpus, pids_max = limits
    if host.systemd:
        fence = systemd.device_properties(list(minors), proc_devices()) if minors else []
        properties = systemd.properties(memory_bytes, cpu_quota if enforce else 0, cpus, pids_max, fence)
        return systemd.plan(host.parents["unified"], name, properties, host.systemd_version), ()
    devices = tuple(nvidia_device_rules(list(minors))) if minors else ()
    wanted = {"pids", "unified", *(("memory", "cpu") if enforce else ()), *(("devices",) if devices else ())}
    parents = {c: p for c, p in host.parents.items() if c in wanted}
    return (plan(host.version, parents, name) if parents else CgroupPlan()), devices
