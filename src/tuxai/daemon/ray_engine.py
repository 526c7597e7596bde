"""The daemon on a Ray cluster (``tuxai up --ray ADDRESS|auto``): tuxai's queue, store and policy over
Ray's nodes, every decision run by the Ray executor (``daemon.cluster``, ``executor.ray``)."""

from __future__ import annotations

import logging
from pathlib import Path

from tuxai.cluster.ray_nodes import ClusterView, probe_this_node
from tuxai.daemon.cluster import RayNodes
from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.executor.attempt import AttemptHandle
from tuxai.executor.ray import RayExecutor
from tuxai.hardware.cgroups import CgroupSupport, detect_cgroups
from tuxai.model.job import JobState
from tuxai.store.jobs import Store
from tuxai.telemetry.ranks import NodeSampler
from tuxai.telemetry.samplers import sampler_for

log = logging.getLogger("tuxai.daemon")


def ray_daemon(config: DaemonConfig, store: Store, address: str, node_root: Path) -> Daemon:
    """A daemon whose nodes are the Ray cluster's at ``address``, read now (each node probed on itself).

    ``node_root``: where each node keeps its ranks' run directories.

    Raises:
        ClusterError: Ray is not installed, the cluster does not answer, or a node's probe failed.
    """
    view = ClusterView(address)
    nodes = view.refresh()  # joins the cluster now: a wrong address is the daemon's start error, in one line
    log.info("on the Ray cluster at %s (asked: %s), %d node(s) read", view.address, address, len(nodes))
    off = config.cgroups.problem.startswith("disabled")  # tuxai up --cgroups off: no node makes groups either
    detect = None if off else node_cgroups
    executor = RayExecutor(view.connect, str(node_root), node_cgroups=detect, node_sampler=node_sampler)
    running = [AttemptHandle(job.run_dir) for job in store.jobs([JobState.RUNNING]) if job.run_dir]
    removed = executor.adopt(running)  # the groups a killed daemon kept: Ray's GPUs whole again
    if removed:
        log.info("removed %d placement group(s) no running job holds: %s", len(removed), ", ".join(removed))
    return Daemon(config, store, executor, RayNodes(view, after_read=executor.sweep))  # idle groups go


def node_cgroups() -> CgroupSupport:
    """A node's own cgroups, detected on the node by its launcher (``executor.node_cgroups``) as the
    daemon detects this machine's: its ``tuxai`` parent made (on cgroupfs v2 the launcher's worker moved
    into a leaf first)."""
    return detect_cgroups(prepare=True)


def node_sampler() -> NodeSampler:
    """A node's telemetry of its ranks, made on the node by its launcher (``telemetry.ranks``): its GPUs
    sampled as the daemon samples this machine's (NVML, AMD's sysfs, or its simulated inventory's)."""
    inventory = probe_this_node()
    gpus = sampler_for(list(inventory.gpus), simulated=inventory.source.startswith("simulated"))
    return NodeSampler(gpus, {g.uuid: g.index for g in inventory.gpus if g.uuid})
