"""The daemon on a cluster engine (``tuxai up --ray``): the nodes it schedules on, and an attempt's ranks.

The daemon keeps its queue, store and policy; the nodes come from the engine (``ClusterNodes``:
Ray's through ``cluster.ray_nodes``, refreshed every few seconds so nodes that join or leave are
seen) and each decision becomes one ``RankLaunch`` per node for the Ray executor: the node's
``Launch`` built as on one box from that node's own inventory, with the launch contract's
variables for its rank (MASTER_ADDR: the first node's address, NODE_RANK, torchrun's line …).
Rank 0 writes the job's log and owns its directory (checkpoint, endpoint); rank ``r`` writes
``output.rank<r>.log`` beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from tuxai.cluster.ray_nodes import ClusterView
from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.launch import build_launch, prepare_attempt
from tuxai.errors import ClusterError, UsageError
from tuxai.executor.attempt import AttemptHandle, AttemptTaken, Executor
from tuxai.executor.group_plan import limited as enforced
from tuxai.executor.launch import free_port
from tuxai.executor.ray import RankLaunch, RayExecutor
from tuxai.executor.rundir import rank_output
from tuxai.hardware.cgroups import CgroupSupport
from tuxai.model.job import JobRecord
from tuxai.model.launch import gang_of, node_launch, preferred_port
from tuxai.model.resources import Allocation
from tuxai.scheduler.snapshot import Node

REFRESH_S = 5.0  # how often the cluster's nodes are read again (a node's own probe only when new)
log = logging.getLogger("tuxai.daemon")


class ClusterNodes(Protocol):
    """The nodes a cluster engine offers now."""

    def nodes(self) -> tuple[Node, ...]:
        """The alive nodes, each with its inventory."""


class RayNodes:
    """Ray's alive nodes (``ClusterView``), read again at most every ``refresh_s``. While the cluster does
    not answer, ``problem`` says so (and the daemon's log, once per new reason): the daemon starts nothing
    then (``cluster_down``) and its pending jobs' reasons say why; the last good list is kept for the
    running jobs and for admission, never taken for a cluster that answers."""

    def __init__(
        self,
        view: ClusterView,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        after_read: Callable[[], None] = lambda: None,
    ) -> None:
        """``after_read``: called after each good read (the executor's sweep of the groups it keeps idle)."""
        self.view, self.refresh_s, self.clock, self.after_read = view, refresh_s, clock, after_read
        self._nodes: tuple[Node, ...] = ()
        self._read_at: float | None = None
        self._good_at: float | None = None
        self.problem = ""

    def nodes(self) -> tuple[Node, ...]:
        """The nodes as last read, read again when older than ``refresh_s``."""
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.refresh_s:
            self._read_at = now
            try:
                self._nodes, self._good_at = self.view.refresh(), time.time()  # wall time: printed
            except ClusterError as exc:
                self._failed(exc.message)
            else:
                if self.problem:
                    log.warning("the Ray cluster answers again: %d node(s)", len(self._nodes))
                self.problem = ""
                self.after_read()
        return self._nodes

    def _failed(self, message: str) -> None:
        last = time.strftime("%H:%M:%S", time.localtime(self._good_at)) if self._good_at else "never"
        problem = f"the Ray cluster does not answer ({message}; nodes last read {last}): nothing starts until it does"
        if not self.problem.startswith(f"the Ray cluster does not answer ({message};"):
            log.warning("%s", problem)
        self.problem = problem


def cluster_down(cluster: ClusterNodes | None) -> str:
    """Why the cluster's nodes cannot be trusted now (its read fails), or "" (this machine: never)."""
    return str(getattr(cluster, "problem", "") or "")


def rank_launches(
    config: DaemonConfig,
    job: JobRecord,
    allocation: Allocation,
    nodes: Mapping[str, Node],
    attempt: int,
    log_path: str,
    base: dict[str, str],
) -> list[RankLaunch]:
    """One ``RankLaunch`` per node of ``allocation`` (rank 0 first, then ``allocation.more``).

    Raises:
        UsageError: a node of the allocation is not in the cluster any more.
    """
    placed = (replace(allocation, more=()), *allocation.more)
    missing = [a.node for a in placed if a.node not in nodes]
    if missing:
        raise UsageError(f"node {', '.join(missing)} left the cluster before job {job.id} started")
    hosts = [a.node for a in placed]  # a Ray node's name is its address
    ranks = []
    for rank, where in enumerate(placed):
        # The node's own inventory; its cgroups and CPUs are its own, not this machine's.
        local = replace(config, inventory=nodes[where.node].inventory, cgroups=CgroupSupport(0), online_cpus=())
        log = str(Path(log_path).with_name(rank_output(rank)))
        launch = build_launch(local, job, where, attempt, log, base)
        limited = enforced(job.spec.request.memory_bytes, config.cgroup_every_job)  # as on one box: the node
        launch = replace(launch, cpu_quota=job.spec.request.cpus if limited else 0)  # plans (executor.node_cgroups)
        if job.spec.launcher is not None:
            gang = gang_of(len(placed), len(where.gpus), job.spec.launcher, job.spec.procs_per_node)
            port = _master_port(hosts[0], job.id, attempt)
            node = node_launch(gang, job.spec.command, hosts, port, rank, (job.id, attempt))
            launch = replace(launch, command=node.command, env={**launch.env, **node.env})
        if rank:
            launch = replace(launch, job_dir="")  # rank 0's node owns the job's directory
        if job.spec.env_lock:  # the env travels as its lockfile's text: each node builds or reuses it
            launch = replace(launch, env_lock=job.spec.env_lock)
        ranks.append(RankLaunch(launch, where.node, tuple(g.uuid for g in where.gpus if g.uuid)))
    return ranks


def _master_port(master: str, job_id: int, attempt: int) -> int:
    """The job's own port, or the next free one when the master is this machine (else checked by nobody)."""
    try:
        return free_port(master, preferred_port(job_id, attempt))
    except UsageError:
        return preferred_port(job_id, attempt)


def prepare_for(
    executor: Executor,
    config: DaemonConfig,
    job: JobRecord,
    allocation: Allocation,
    nodes: Callable[[], tuple[Node, ...]],
    paths: tuple[str, dict[str, str]],
) -> tuple[int, AttemptHandle]:
    """The job's next attempt prepared (nothing runs yet): its number and handle. On a cluster one rank
    per node of ``allocation`` (``nodes``: the cluster's now); else ``daemon.launch.prepare_attempt``.

    ``paths``: the job's log and the environment it was submitted from.
    """
    log_path, base = paths
    if not isinstance(executor, RayExecutor):
        return prepare_attempt(executor, config, job, allocation, log_path, base)
    by_name = {node.name: node for node in nodes()}
    attempt = job.attempt + 1
    while True:
        try:
            ranks = rank_launches(config, job, allocation, by_name, attempt, log_path, base)
            return attempt, executor.prepare_gang(ranks)
        except AttemptTaken:
            attempt += 1
