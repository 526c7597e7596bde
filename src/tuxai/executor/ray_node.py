"""tuxai's launcher on a Ray node: the actor's body (``executor.ray`` makes it a Ray actor, one per node).

It runs each rank placed on its node with tuxai's own shim, exactly as the local executor does
(the same ``Launch``, run directory, claim, cgroups where the node allows, status file and exit
status): a run directory under the node's ``root`` named after the rank, the shim started detached
(its own session: it outlives the actor, as a local shim outlives the daemon). Observing, stopping
and reaping are the local executor's, run on the node.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from tuxai.errors import PermissionDenied
from tuxai.executor import cgroups
from tuxai.executor.attempt import AttemptHandle, Observed, Seen
from tuxai.executor.local import CgroupHost, LocalExecutor
from tuxai.executor.node_cgroups import rank_cgroup
from tuxai.executor.rundir import Launch, Phase, read_launch, read_status, write_launch
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.job import StopReason


def node_env_cache(root: Path) -> str:
    """Where this node keeps the environments jobs build on it: ``TUXAI_ENV_CACHE`` in the node's
    environment (``ray start``'s), else ``<root>/envs`` (a user who cannot write there builds in their own)."""
    return os.environ.get("TUXAI_ENV_CACHE") or str(root / "envs")


class RankSampler(Protocol):
    """A node's telemetry of the ranks placed on it (``telemetry.ranks.NodeSampler``)."""

    def sample(
        self, name: str, pgid: int | None, cgroup: CgroupPlan, gpu_uuids: Sequence[str], node: str, now: float
    ) -> Any:
        """Rank ``name`` now."""

    def forget(self, names: Sequence[str]) -> None:
        """Drop what is kept of ranks that ended."""


class NodeRunner:
    """tuxai's launcher on one node, started once per node and kept (a detached actor): it runs the
    ranks placed on its node, each in ``<root>/<rank name>/run-<attempt>``."""

    def __init__(self, root: str, address: str | None = None) -> None:
        """``root``: where this node keeps tuxai's run directories; ``address``: this node's, None for the
        one Ray knows it by (a runner made outside a Ray worker names its own)."""
        self.root = Path(root)
        self.address = address
        self.local = LocalExecutor(self.root)
        self.host: CgroupHost | None = None  # this node's cgroups, detected at the first rank that asks
        self.sampler: RankSampler | None = None  # this node's telemetry, made at the first sample asked

    def _address(self) -> str:
        """This node's address: the one given, else Ray's for the node this actor runs on."""
        if self.address is not None:
            return self.address
        import ray

        return str(ray.util.get_node_ip_address())

    def _handle(self, name: str) -> AttemptHandle | None:
        """The run directory of rank ``name`` here (found again after the actor restarted), if any."""
        found = sorted((self.root / name).glob("run-*"))
        return AttemptHandle(str(found[-1])) if found else None

    def start(self, name: str, launch: Launch, host: Callable[[], CgroupHost] | None = None) -> str:
        """Write the rank's launch and start its shim, detached; returns this node's address.

        ``host``: detects this node's cgroups (once per launcher): the rank's groups are planned from it
        (``executor.node_cgroups``); None: the rank runs without.

        Raises:
            PermissionDenied: the launch names no user (it would run as this worker's: root, or one shared
                account); a rank always runs as its job's user (security issue S1).
        """
        if launch.user is None:
            raise PermissionDenied(
                f"rank {name} of job {launch.job_id} names no user: refused (a rank runs as its job's user)",
                hint="start ranks through tuxai's daemon; Ray must be reachable by the daemon only (docs/cluster.md)",
            )
        base = self.root / name
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        run_dir = base / f"run-{launch.attempt}"
        address = self._address()
        if launch.env_lock:  # the shim builds or reuses the env in this node's cache (executor.node_env)
            launch = replace(launch, env_cache=node_env_cache(self.root), node=address)
        if host is not None:
            self.host = self.host or host()
            launch = rank_cgroup(self.host, launch, name, os.geteuid(), address)
        if not run_dir.exists():
            write_launch(run_dir, launch)
            self.local.start(AttemptHandle(str(run_dir)))  # through the node's fork server: no new interpreter
        return address

    def observe(self, name: str) -> Observed:
        """Rank ``name``'s shim as the local executor sees it (NOT_STARTED before ``start``)."""
        handle = self._handle(name)
        seen = Observed(Seen.NOT_STARTED, None) if handle is None else self.local.observe(handle)
        if seen.seen in (Seen.EXITED, Seen.VANISHED):
            self._forget(name)
        return seen

    def _forget(self, name: str) -> None:
        """Rank ``name`` ended: its telemetry's last reading dropped (the launcher outlives many ranks)."""
        if self.sampler is not None:
            self.sampler.forget([name])

    def sample(self, names: list[str], sampler: Callable[[], RankSampler]) -> list[Any]:
        """Each rank's telemetry sampled here (``telemetry.ranks``), None for a rank not running here now.

        ``sampler``: makes this node's sampler the first time (kept: it holds each rank's last reading).
        """
        self.sampler = self.sampler or sampler()
        node, now = self._address(), time.time()
        found: list[Any] = []
        for name in names:
            handle = self._handle(name)
            status = None if handle is None else read_status(Path(handle))
            if handle is None or status is None or status.phase is Phase.EXITED or not status.pgid:
                if status is not None and status.phase is Phase.EXITED:
                    self._forget(name)
                found.append(None)
                continue
            launch = read_launch(Path(handle))
            gpus = [u for u in launch.env.get("CUDA_VISIBLE_DEVICES", "").split(",") if u.startswith(("GPU-", "MIG-"))]
            found.append(self.sampler.sample(name, status.pgid, launch.cgroup, gpus, node, now))
        return found

    def stop(self, name: str, reason: StopReason) -> None:
        """Ask rank ``name``'s shim to stop: SIGTERM, the job's grace, SIGKILL."""
        handle = self._handle(name)
        if handle is not None:
            self.local.stop(handle, reason)

    def kill(self, name: str) -> None:
        """SIGKILL what is provably left of rank ``name``'s job (its process group, proven the job's), and
        all in the groups its launch was planned with on this node (what left the process group too), which
        then go: a rank's group is named by the rank, not found by the local executor's attempt names."""
        handle = self._handle(name)
        if handle is not None:
            self.local.kill_lost(handle)
            with contextlib.suppress(ValueError):  # no launch was written: no group was planned
                cgroups.kill_and_remove(read_launch(Path(handle)).cgroup)
        self._forget(name)
