"""A rank's cgroup on its cluster node (issue 15): the typed plan a local job gets, planned on the node.

The daemon plans a local job's groups from this machine's cgroups (``daemon.launch``). A rank's node is
another machine whose cgroups the daemon cannot see, so a rank's launch carries its limits (memory, CPUs'
worth of time, tasks) and no plan; the node's launcher (``executor.ray_node``) plans the groups from the
node's own cgroup support, detected there (the node's own ``tuxai`` parent), before it starts the shim,
which makes them, attaches the rank, enforces the limits and reads an OOM kill as on one box. A node that
cannot make groups (its worker is not root, or it has no cgroup tuxai may write) runs the rank without,
and when the rank has a limit to enforce, says so on the first line of the rank's log (``Launch.note``).
Device fencing is not planned on a node (a rank is held to its GPUs by ``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

from dataclasses import replace

from tuxai.executor.group_plan import plan_groups
from tuxai.executor.local import CgroupHost
from tuxai.executor.rundir import Launch
from tuxai.model.units import format_bytes


def limited(launch: Launch) -> bool:
    """The rank has a limit its group must enforce (memory, or CPUs' worth of time)."""
    return bool(launch.memory_limit_bytes or launch.cpu_quota)


def rank_cgroup(host: CgroupHost | None, launch: Launch, name: str, euid: int, where: str) -> Launch:
    """``launch`` with its groups planned on this node (``host``: the node's cgroup support; ``name``: the
    rank's group name, unique on the node), or, where none can be made, with a note saying why.

    >>> bare = Launch(1, 1, ("true",), {}, "/", "/l", memory_limit_bytes=2**20, cpu_quota=1)
    >>> note = rank_cgroup(None, bare, "r0", 1000, "10.0.0.3").note
    >>> note.startswith("tuxai: node 10.0.0.3 runs this rank without a cgroup (its worker runs as uid 1000, not root)")
    True
    >>> note.endswith("its memory limit of 1.0 MiB and CPU quota of 1 are not enforced")
    True
    """
    if launch.cgroup:
        return launch  # planned already
    problem = getattr(host, "problem", "") or "no cgroup file system tuxai may write"
    why = f"its worker runs as uid {euid}, not root" if euid != 0 else "" if host and host.version else problem
    if why:
        if not limited(launch):
            return launch
        what = [f"memory limit of {format_bytes(launch.memory_limit_bytes)}"] if launch.memory_limit_bytes else []
        what += [f"CPU quota of {launch.cpu_quota}"] if launch.cpu_quota else []
        note = f"tuxai: node {where} runs this rank without a cgroup ({why}): its {' and '.join(what)} are not enforced"
        return replace(launch, note=note, cpu_quota=0)
    assert host is not None  # why is "" only with a host that has a version
    limits = (launch.memory_limit_bytes, launch.cpu_quota, launch.cpus, launch.pids_max)
    cgroup, _ = plan_groups(host, name, limited(launch), limits)  # as daemon.launch plans a local job's; no fence
    return replace(launch, cgroup=cgroup)
