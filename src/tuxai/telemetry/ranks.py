"""A cluster rank's telemetry, sampled on its own node (issue 15): CPU and memory from the rank's cgroup
(its process group where the cgroup does not count), its GPUs from the node's own sampler.

One ``NodeSampler`` lives in each node's launcher (``executor.ray_node``): the daemon asks the launcher
at each telemetry step, as it asks it how each rank fares, and folds the ranks' samples into the job's
usage, energy and GPU use (``daemon.cluster_telemetry``). Kept in the launcher rather than a file each
shim writes: the daemon already calls the launcher every pass, the launcher already knows each rank's
process group and cgroup, and a file per rank would be written every second on every node for nobody.
A simulated node's GPUs are as busy as the rank's CPU, as on one box (``samplers.SimulatedSampler``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuxai.model.cgroup import CgroupPlan
from tuxai.telemetry import procfs
from tuxai.telemetry.samplers import GpuSampler
from tuxai.telemetry.samples import GpuSample


@dataclass(frozen=True)
class RankSample:
    """One rank at one instant, on its node: cumulative CPU seconds, memory now, its processes (the
    node's pids) and its GPUs' samples."""

    node: str
    at: float
    cpu_s: float
    memory_bytes: int
    pids: tuple[int, ...]
    gpus: tuple[GpuSample, ...]


class NodeSampler:
    """The ranks of one node: the node's GPU sampler (``uuids``: its GPUs' indexes by UUID), each rank's
    last CPU reading (how busy a simulated GPU is)."""

    def __init__(self, gpus: GpuSampler, uuids: Mapping[str, int]) -> None:
        """``gpus``: samples the node's GPUs; ``uuids``: UUID → the node's index of that GPU."""
        self.gpus, self.uuids = gpus, dict(uuids)
        self._last: dict[str, tuple[float, float]] = {}  # rank name → (when, CPU seconds)

    def sample(
        self, name: str, pgid: int | None, cgroup: CgroupPlan, gpu_uuids: Sequence[str], node: str, now: float
    ) -> RankSample:
        """Rank ``name`` now: its process group ``pgid`` and groups ``cgroup``, the GPUs ``gpu_uuids``."""
        groups = procfs.group_usage({pgid}) if pgid else {}
        cpu, memory, _, _, pids = groups.get(pgid or -1, (0.0, 0, 0, 0, frozenset()))
        if cgroup:  # the cgroup counts what left the process group too
            group_cpu, group_memory = procfs.cgroup_usage(cgroup)
            cpu = group_cpu if group_cpu is not None else cpu
            memory = group_memory if group_memory is not None else memory
        when, before = self._last.get(name, (now, cpu))
        self._last[name] = (now, max(cpu, before))
        rate = (cpu - before) / (now - when) if now > when else 0.0
        indexes = [self.uuids[u] for u in gpu_uuids if u in self.uuids]
        mine = [
            s for s in self.gpus.sample(now, dict.fromkeys(indexes, min(1.0, max(0.0, rate)))) if s.index in indexes
        ]
        return RankSample(node, now, max(cpu, before), memory, tuple(sorted(pids)), tuple(mine))

    def forget(self, names: Sequence[str]) -> None:
        """Drop what is kept of ranks that ended."""
        for name in names:
            self._last.pop(name, None)
