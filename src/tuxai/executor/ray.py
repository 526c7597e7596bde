"""The ``ray`` executor: an attempt becomes a placement group, its ranks run by each node's launcher (issue 15).

It answers the seam every backend answers (``executor.attempt``). An attempt is one or more ranks,
one per node (``RankLaunch``: the node's ``Launch``, the node the scheduler chose and its GPUs). At
``start`` the ranks become one placement group — ``STRICT_PACK`` for one node, ``STRICT_SPREAD``
across nodes — whose bundles carry the GPUs the scheduler chose as Ray's ``tuxai_gpu_<uuid>``
resources (and as Ray's ``GPU`` count) and pin the node (``node:<address>``), so Ray's accounting
agrees with tuxai's choice. A group Ray cannot place within ``place_timeout_s`` is removed (never
left PENDING) and the attempt ends with that in words. The rank of each bundle is run by its node's
launcher (``executor.ray_node``): one detached actor per node, started with the first rank placed
there and kept (a fresh Ray worker process per attempt cost seconds), which runs tuxai's own shim.

The handle is the attempt's directory on the daemon's side, ``<job dir>/run-<attempt>``, made once:
``rank-<r>/launch.json`` (each rank's launch and node), ``claimed`` (``start`` or ``abandon``, one of
them), ``stop.json``, ``nodes.json`` (where the ranks run: addresses and Ray node ids), and
``status.json`` once the gang ended. The group is named from the handle alone (``tuxai-<hash>``, its
ranks ``…-r<rank>``) and the launchers from their node (``tuxai-launcher-<node id>``), in the daemon's
Ray namespace, so a restarted daemon finds them again; ``kill_lost`` with the directory gone still
removes the group. Gang semantics (``executor.gang_status``): the first rank that fails tears the gang
down, a rank whose node (and launcher) is gone ends the gang with the node's loss as its reason; once
every rank is over the gang's status is recorded and the group removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tuxai.executor.attempt import AttemptHandle, AttemptTaken, Observed, Processes, Seen
from tuxai.executor.gang_status import Verdict, gang_state
from tuxai.executor.local import CgroupHost
from tuxai.executor.ray_groups import LINGER_S, GroupPool
from tuxai.executor.ray_node import NodeRunner, RankSampler
from tuxai.executor.ray_samples import RankSampling, launcher_name
from tuxai.executor.rundir import (
    Launch,
    Phase,
    Status,
    claim,
    is_claimed,
    read_launch,
    read_status,
    read_stop,
    write_atomic,
    write_launch,
    write_status,
    write_stop,
)
from tuxai.model.gang import GPU_RESOURCE_PREFIX, RAY_NAMESPACE
from tuxai.model.job import StopReason

NODES = "nodes.json"
GROUP = "group.json"  # the placement group the ranks hold (executor.ray_groups: maybe one kept from a gang before)
NODE_SHARE = 0.001  # of a node's ``node:<address>`` resource: pins a bundle to the node, takes nothing


@dataclass(frozen=True)
class RankLaunch:
    """One node of an attempt: what its shim runs, the node (Ray's address of it) and the GPUs it is given."""

    launch: Launch
    address: str = ""  # "": wherever Ray finds the GPUs
    gpu_uuids: tuple[str, ...] = ()


def bundle(rank: RankLaunch) -> dict[str, float]:
    """The Ray bundle of one rank: its GPUs as tuxai's per-GPU resources and Ray's count, its node pinned.

    >>> bundle(RankLaunch(Launch(1, 1, ("true",), {}, "/", "/l"), "127.0.0.3", ("GPU-a",)))
    {'GPU': 1.0, 'tuxai_gpu_GPU-a': 1.0, 'node:127.0.0.3': 0.001}
    """
    shares: dict[str, float] = {"GPU": float(len(rank.gpu_uuids))} if rank.gpu_uuids else {}
    shares |= {f"{GPU_RESOURCE_PREFIX}{uuid}": 1.0 for uuid in rank.gpu_uuids}
    if rank.address:
        shares[f"node:{rank.address}"] = NODE_SHARE
    return shares or {"CPU": NODE_SHARE}


def group_name(handle: AttemptHandle) -> str:
    """The placement group's name, from the handle alone (its ranks are ``<name>-r<rank>``)."""
    return "tuxai-" + hashlib.sha256(handle.encode()).hexdigest()[:16]


def visible_gpus(launch: Launch) -> tuple[str, ...]:
    """The GPU UUIDs a one-node launch names (``CUDA_VISIBLE_DEVICES``, as the daemon sets it)."""
    return tuple(u for u in launch.env.get("CUDA_VISIBLE_DEVICES", "").split(",") if u.startswith(("GPU-", "MIG-")))


class RayExecutor:
    """Attempts as placement groups and launcher actors on a Ray cluster (``connect``: Ray, joined)."""

    def __init__(
        self,
        connect: Callable[[], ModuleType],
        node_root: str,
        place_timeout_s: float = 10.0,
        call_s: float = 10.0,
        linger_s: float = LINGER_S,
        node_cgroups: Callable[[], CgroupHost] | None = None,
        node_sampler: Callable[[], RankSampler] | None = None,
    ) -> None:
        """``node_root``: where each node keeps its ranks' run directories; ``place_timeout_s``: how long a
        placement group may stay unplaced before it is removed; ``call_s``: the longest wait on one actor;
        ``linger_s``: how long an ended gang's group is kept for the next job on the same GPUs;
        ``node_cgroups``: detects a node's cgroups, run on each node (``executor.node_cgroups``; None: the
        ranks run without a cgroup); ``node_sampler``: makes a node's telemetry of its ranks, on the node
        (``samples``; None: none)."""
        self.connect, self.node_root, self.node_cgroups = connect, node_root, node_cgroups
        self.node_sampler = node_sampler
        self.place_timeout_s, self.call_s = place_timeout_s, call_s
        self.groups = GroupPool(linger_s)
        self._runner: Any = None
        self._launchers: dict[str, Any] = {}  # Ray node id → its launcher's handle, once looked up
        self.sampling = RankSampling()  # the telemetry's kept launchers and deadline

    def _ray(self) -> tuple[ModuleType, Any]:
        ray = self.connect()
        if self._runner is None:
            self._runner = ray.remote(num_cpus=0, max_restarts=0)(NodeRunner)
        return ray, self._runner

    def prepare(self, launch: Launch) -> AttemptHandle:
        """One rank, where Ray finds the GPUs its ``CUDA_VISIBLE_DEVICES`` names (``prepare_gang`` pins nodes)."""
        return self.prepare_gang((RankLaunch(launch, "", visible_gpus(launch)),))

    def prepare_gang(self, ranks: Sequence[RankLaunch]) -> AttemptHandle:
        """Make ``<job dir>/run-<attempt>`` with each rank's launch and node; its path is the handle.

        Raises:
            AttemptTaken: the directory exists (attempts are never reused).
            ValueError: no rank, or the first names no job directory.
        """
        if not ranks or not ranks[0].launch.job_dir:
            raise ValueError("a Ray attempt needs at least one rank and a job directory")
        first = ranks[0].launch
        run_dir = Path(first.job_dir) / f"run-{first.attempt}"
        try:
            run_dir.mkdir(mode=0o700)
        except FileExistsError as exc:
            raise AttemptTaken(f"{run_dir} exists: an attempt directory is never reused") from exc
        for number, rank in enumerate(ranks):
            write_launch(run_dir / f"rank-{number}", rank.launch)
            write_atomic(run_dir / f"rank-{number}" / "node.json", {"address": rank.address, "gpus": rank.gpu_uuids})
        return AttemptHandle(str(run_dir))

    def _ranks(self, run_dir: Path) -> list[RankLaunch]:
        ranks: list[RankLaunch] = []
        while (run_dir / f"rank-{len(ranks)}").is_dir():
            where = run_dir / f"rank-{len(ranks)}"
            node = json.loads((where / "node.json").read_text())
            ranks.append(RankLaunch(read_launch(where), str(node["address"]), tuple(node["gpus"])))
        return ranks

    def start(self, handle: AttemptHandle) -> None:
        """Place the group (or remove it and record why not), then start each rank through its node's launcher."""
        run_dir = Path(handle)
        if not claim(run_dir):
            return  # abandoned, or started before
        stop = read_stop(run_dir)
        if stop is not None:
            write_status(run_dir, Status(Phase.EXITED, 0, ended_at=time.time(), stop_reason=stop))
            return
        ranks = self._ranks(run_dir)
        try:
            self._place_and_start(handle, ranks)
        except Exception as exc:  # noqa: BLE001 (Ray's errors have no common base we can name before import)
            self._launchers.clear()  # a launcher that died is looked up (or started) again
            self._release(handle)
            write_status(run_dir, Status(Phase.EXITED, 0, ended_at=time.time(), error=f"Ray could not start it: {exc}"))

    def _place_and_start(self, handle: AttemptHandle, ranks: list[RankLaunch]) -> None:
        from ray.util.placement_group import placement_group_table

        ray, runner = self._ray()
        run_dir, name = Path(handle), group_name(handle)
        bundles = [bundle(r) for r in ranks]
        strategy = "STRICT_PACK" if len(ranks) == 1 else "STRICT_SPREAD"
        group, placed_as = self.groups.acquire(ray, bundles, strategy, name)
        write_atomic(run_dir / GROUP, {"name": placed_as})  # the group to give back when the gang ends
        if not group.wait(self.place_timeout_s):  # a kept group answers at once
            self.groups.release(ray, placed_as, keep=False, holder=name)
            shape = ", ".join(_shown(b) for b in bundles)
            error = f"Ray could not place {len(ranks)} node(s) {strategy} within {self.place_timeout_s:g} s: {shape}"
            write_status(run_dir, Status(Phase.EXITED, 0, ended_at=time.time(), error=error))
            return
        placed = placement_group_table(group)["bundles_to_node_id"]
        node_ids = [str(placed[number]) for number in range(len(ranks))]
        refs = [
            self._launcher(runner, node).start.remote(f"{name}-r{number}", rank.launch, self.node_cgroups)
            for number, (node, rank) in enumerate(zip(node_ids, ranks, strict=True))
        ]
        addresses = ray.get(refs, timeout=max(self.call_s, 30.0))  # a node's first launcher: a new worker process
        write_atomic(run_dir / NODES, {"nodes": list(addresses), "node_ids": node_ids})

    def _launcher(self, runner: Any, node_id: str) -> Any:
        """The node's launcher actor, started the first time a rank is placed there (kept: detached)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if node_id in self._launchers:
            return self._launchers[node_id]
        self._launchers[node_id] = runner.options(
            name=launcher_name(node_id),
            namespace=RAY_NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(self.node_root)
        return self._launchers[node_id]

    def _actors(self, handle: AttemptHandle) -> list[Any]:
        """Each rank's launcher, the actor of its node (None where it is gone: the node with it)."""
        ray, _ = self._ray()
        found = []
        for node_id in _read_node_ids(Path(handle)):
            try:
                found.append(ray.get_actor(launcher_name(node_id), namespace=RAY_NAMESPACE))
            except ValueError:
                found.append(None)
        return found

    def observe(self, handle: AttemptHandle) -> Observed:
        """The gang's status once recorded; else each rank asked on its node, and the gang's verdict acted on."""
        run_dir = Path(handle)
        recorded = read_status(run_dir)  # the gang's, written once it ended
        if recorded is not None and recorded.phase is Phase.EXITED:
            return Observed(Seen.EXITED, recorded)
        if not run_dir.is_dir():
            return Observed(Seen.VANISHED, None)
        if not is_claimed(run_dir):
            return Observed(Seen.NOT_STARTED, None)
        nodes = _read_nodes(run_dir)
        if nodes is None:
            return Observed(Seen.LOST, None)  # claimed by a start that never placed its actors
        actors = self._actors(handle)
        names = [f"{group_name(handle)}-r{number}" for number in range(len(actors))]
        ranks = self._ask(actors, names)
        state = gang_state(ranks, nodes, time.time())
        if state.verdict is Verdict.TEAR_DOWN:
            for number in state.stop_ranks:
                if actors[number] is not None:
                    actors[number].stop.remote(names[number], StopReason.SHUTDOWN)
        if state.verdict is not Verdict.ENDED or state.status is None:
            return Observed(Seen.ALIVE, ranks[0].status if ranks else None)
        write_status(run_dir, state.status)
        self._release(handle, keep=not state.status.error)  # a lost node's group is not one to reuse
        return Observed(Seen.EXITED, state.status)

    def _ask(self, actors: list[Any], names: list[str]) -> list[Observed]:
        """Each rank's ``Observed``: LOST where its launcher is gone, ALIVE where it did not answer in time."""
        ray, _ = self._ray()
        refs = [None if a is None else a.observe.remote(n) for a, n in zip(actors, names, strict=True)]
        seen = []
        for ref in refs:
            if ref is None:
                seen.append(Observed(Seen.LOST, None))
                continue
            try:
                seen.append(ray.get(ref, timeout=self.call_s))
            except ray.exceptions.GetTimeoutError:
                seen.append(Observed(Seen.ALIVE, None))
            except ray.exceptions.RayError:
                seen.append(Observed(Seen.LOST, None))
        return seen

    def stop(self, handle: AttemptHandle, reason: StopReason) -> None:
        """Record the stop (a start after it starts nothing), then ask every rank's shim to stop."""
        write_stop(Path(handle), reason)
        for number, actor in enumerate(self._actors(handle)):
            if actor is not None:
                actor.stop.remote(f"{group_name(handle)}-r{number}", reason)

    def abandon(self, handle: AttemptHandle) -> bool:
        """Claim a never-started attempt (``start`` claims it first when it runs)."""
        run_dir = Path(handle)
        return not run_dir.is_dir() or claim(run_dir)

    def kill_lost(self, handle: AttemptHandle) -> None:
        """SIGKILL every rank's job still there (through its node's launcher), then remove the group.

        With the attempt's directory gone, only the group is found (by name): its ranks' nodes are not.
        """
        ray, _ = self._ray()
        names = [f"{group_name(handle)}-r{number}" for number in range(len(_read_node_ids(Path(handle))))]
        kills = [a.kill.remote(n) for a, n in zip(self._actors(handle), names, strict=True) if a is not None]
        with contextlib.suppress(ray.exceptions.RayError):
            ray.get(kills, timeout=self.call_s)
        self._release(handle)

    def _release(self, handle: AttemptHandle, keep: bool = False) -> None:
        """The gang's ranks are over: its group kept for the next job on the same GPUs (``keep``: see
        ``executor.ray_groups``) or removed, Ray's GPUs given back; the launchers stay."""
        ray, _ = self._ray()
        self.groups.release(ray, placed_group(handle), keep, holder=group_name(handle))

    def nodes(self, handle: AttemptHandle) -> tuple[str, ...]:
        """Where the attempt's ranks run, in rank order (empty before they started)."""
        return tuple(_read_nodes(Path(handle)) or ())

    def samples(self, handles: Sequence[AttemptHandle]) -> list[list[tuple[int, Any]]]:
        """Each attempt's running ranks' telemetry, sampled on their nodes by their launchers, all the
        attempts at once (``executor.ray_samples``: one call per node, one deadline for every node):
        (rank, sample) in rank order; a rank whose node did not answer in time (or is gone) is left out."""
        if self.node_sampler is None:
            return [[] for _ in handles]
        ray, _ = self._ray()
        gangs = [(group_name(h), _read_node_ids(Path(h))) for h in handles]
        return self.sampling.samples(ray, gangs, self.node_sampler)

    def processes(self, handle: AttemptHandle) -> Processes | None:
        """None: the ranks run on the cluster's nodes (their telemetry is the nodes')."""
        return None

    def adopt(self, handles: Sequence[AttemptHandle]) -> list[str]:
        """At the daemon's start: the groups of these running attempts are theirs again; every other tuxai
        group on the cluster (kept idle by a daemon killed before, or an ended attempt's) is removed.
        Returns the names removed (``executor.ray_groups``)."""
        ray, _ = self._ray()
        return self.groups.adopt(ray, {placed_group(h): group_name(h) for h in handles})

    def sweep(self) -> None:
        """Remove the idle groups kept longer than ``linger_s`` (the daemon calls it at each read of the nodes)."""
        if self.groups.idle:
            ray, _ = self._ray()
            self.groups.sweep(ray)

    def close(self) -> None:
        """Remove the idle groups kept for reuse; the running gangs' groups and the launchers outlive the daemon."""
        if self._runner is not None:
            ray, _ = self._ray()
            self.groups.sweep(ray, everything=True)


def placed_group(handle: AttemptHandle) -> str:
    """The name of the placement group the attempt's ranks hold (its own name before it was placed)."""
    try:
        return str(json.loads((Path(handle) / GROUP).read_text())["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return group_name(handle)


def _read_nodes(run_dir: Path) -> list[str] | None:
    try:
        return [str(a) for a in json.loads((run_dir / NODES).read_text())["nodes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_node_ids(run_dir: Path) -> list[str]:
    """The Ray node ids the ranks were placed on, in rank order (empty before they started)."""
    try:
        return [str(n) for n in json.loads((run_dir / NODES).read_text())["node_ids"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _shown(shares: dict[str, float]) -> str:
    """A bundle in words: ``{GPU: 2, tuxai_gpu_GPU-a: 1, node:127.0.0.3}``."""
    words = [k if k.startswith("node:") else f"{k}: {v:g}" for k, v in shares.items()]
    return "{" + ", ".join(words) + "}"
