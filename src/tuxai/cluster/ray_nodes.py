"""A Ray cluster's nodes as the scheduler sees them: Ray's view of each node and the node's own inventory.

Ray says which nodes there are (id, address, CPUs, memory, alive); what a node *has* (GPU UUIDs,
MIG, links, NUMA) comes from the doctor's probe run on that node as a Ray task pinned to it
(``NodeAffinitySchedulingStrategy``, hard), so each node answers with its own ``TUXAI_INVENTORY``
or its own tools. ``ClusterView(address).refresh()`` returns the alive nodes as scheduler
``Node``s (named by their address), probing only nodes it has not seen (a node that restarts has
a new id and is probed again); ``cluster_nodes(address)`` is the one-shot form.

Ray's GPU accounting must agree with tuxai's choice of GPUs, so that a Ray user beside tuxai is
never handed the GPU tuxai gave a job: each node declares one custom resource per GPU,
``tuxai_gpu_<uuid>: 1`` (``gpu_resources(inventory)``, given to ``ray start --resources``); a GPU
the inventory has and Ray does not account for is a problem on the node's inventory.

Ray is imported only when a cluster is asked for (``pip install 'tuxai[ray]'``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from tuxai.errors import ClusterError, TuxaiError
from tuxai.hardware.probe import ProbeOptions, collect_inventory
from tuxai.hardware.simulated import load_inventory_file
from tuxai.hardware.source import LiveSource
from tuxai.model.gang import GPU_RESOURCE_PREFIX, RAY_NAMESPACE
from tuxai.model.inventory import Inventory, ProbeProblem
from tuxai.scheduler.snapshot import Node
from tuxai.settings import load_settings

RAY_HINT = "pip install 'tuxai[ray]'"
HEAD_HINT = "is its head running? `ray status --address HOST:PORT`"


@dataclass(frozen=True)
class RayNode:
    """One node as Ray lists it; ``gpu_uuids``: the GPUs it declares as ``tuxai_gpu_<uuid>`` resources."""

    node_id: str
    address: str
    cpus: float
    memory_bytes: int
    alive: bool
    gpus: float = 0.0  # Ray's own ``GPU`` resource
    gpu_uuids: tuple[str, ...] = ()


def parse_ray_nodes(entries: Iterable[Mapping[str, Any]]) -> tuple[RayNode, ...]:
    """``ray.nodes()`` → ``RayNode``s, in Ray's order.

    ``[{"NodeID": "ab…", "NodeManagerAddress": "127.0.0.3", "Alive": True, "Resources": {"CPU": 1.0,
    "memory": 2e9, "GPU": 2.0, "tuxai_gpu_GPU-1…": 1.0}}]`` → ``(RayNode("ab…", "127.0.0.3", 1.0,
    2000000000, True, 2.0, ("GPU-1…",)),)``. A dead node lists no resources.
    """
    nodes = []
    for entry in entries:
        resources = entry.get("Resources") or {}
        uuids = tuple(sorted(k[len(GPU_RESOURCE_PREFIX) :] for k in resources if k.startswith(GPU_RESOURCE_PREFIX)))
        nodes.append(
            RayNode(
                node_id=str(entry["NodeID"]),
                address=str(entry.get("NodeManagerAddress", "")),
                cpus=float(resources.get("CPU", 0.0)),
                memory_bytes=int(resources.get("memory", 0)),
                alive=bool(entry.get("Alive", False)),
                gpus=float(resources.get("GPU", 0.0)),
                gpu_uuids=uuids,
            )
        )
    return tuple(nodes)


def gpu_resources(inventory: Inventory) -> dict[str, float]:
    """The custom resources a node declares to Ray so Ray accounts for each GPU as tuxai does:
    ``{"tuxai_gpu_GPU-1…": 1.0, "tuxai_gpu_GPU-2…": 1.0}`` (``ray start --resources '<json>'``)."""
    return {f"{GPU_RESOURCE_PREFIX}{g.uuid}": 1.0 for g in inventory.gpus if g.uuid}


def accounting_problems(node: RayNode, inventory: Inventory) -> tuple[ProbeProblem, ...]:
    """Where Ray's GPU accounting and the node's inventory disagree, as probe problems of the node."""
    ours = {g.uuid for g in inventory.gpus if g.uuid}
    declared = set(node.gpu_uuids)
    problems = []
    missing = sorted(ours - declared)
    if missing:
        problems.append(
            ProbeProblem(
                "ray",
                f"node {node.address}: Ray does not account for GPU {', '.join(missing)} "
                "(declare them: ray start --resources with tuxai_gpu_<uuid>: 1 each)",
            )
        )
    unknown = sorted(declared - ours)
    if unknown:
        problems.append(
            ProbeProblem("ray", f"node {node.address}: Ray declares GPU {', '.join(unknown)} it does not have", "warn")
        )
    return tuple(problems)


def probe_this_node() -> Inventory:
    """The inventory of the machine this runs on, as the doctor probes it (the node's ``TUXAI_INVENTORY``,
    else its tools; frameworks not probed). Run on each node as a Ray task.

    Raises:
        ConfigError: the node's settings are malformed.
        InventoryError: its simulated inventory is unreadable or malformed.
    """
    settings = load_settings()
    if settings.inventory is not None:
        return load_inventory_file(settings.inventory)
    return collect_inventory(LiveSource(settings.probe_timeout_s), ProbeOptions(frameworks=False))


def import_ray() -> ModuleType:
    """The ``ray`` module, imported now.

    Raises:
        ClusterError: Ray is not installed (the hint says how to install it).
    """
    try:
        import ray
    except ImportError:
        raise ClusterError("Ray is not installed: a cluster needs it", hint=RAY_HINT) from None
    module: ModuleType = ray  # typed Any (pyproject: ray is not type-checked with us)
    return module


def resolve_address(address: str, environ: Mapping[str, str]) -> str:
    """``auto`` → the cluster ``RAY_ADDRESS`` names; any other address as given.

    Never Ray's ``/tmp/ray/ray_current_cluster``: Ray makes ``/tmp/ray`` writable by every user (no
    sticky bit), so any local user could point the root daemon at their own head (T1).

    >>> resolve_address("auto", {"RAY_ADDRESS": "127.0.0.2:6379"}), resolve_address("10.0.0.2:6379", {})
    ('127.0.0.2:6379', '10.0.0.2:6379')

    Raises:
        ClusterError: ``auto``, and ``RAY_ADDRESS`` names no cluster.
    """
    if address != "auto":
        return address
    named = environ.get("RAY_ADDRESS", "").strip()
    if named and named != "auto":
        return named
    raise ClusterError(
        "--ray auto found no Ray cluster: RAY_ADDRESS is not set",
        hint="tuxai up --ray HOST:PORT (the head's address), or set RAY_ADDRESS in the daemon's environment",
    )


def _driver_ip(address: str) -> str | None:
    """The address this process joins the cluster as: the head's own when it is on loopback (Ray would
    otherwise take the machine's interface address, where no node of a loopback cluster runs)."""
    host = address.rsplit(":", 1)[0]
    return host if host.startswith("127.") else None


class ClusterView:
    """The nodes of the Ray cluster at ``address`` (``HOST:PORT`` of its head, or ``auto``), refreshed on ask."""

    def __init__(self, address: str, probe_timeout_s: float = 60.0) -> None:
        self.address = address
        self.probe_timeout_s = probe_timeout_s
        self.ray_nodes: tuple[RayNode, ...] = ()  # as last listed, the dead ones included
        self._inventories: dict[str, Inventory] = {}  # by Ray node id
        self.unprobed: dict[str, str] = {}  # address → why its probe failed at the last refresh

    def connect(self) -> ModuleType:
        """Ray, joined to the cluster as a driver (once per process).

        Raises:
            ClusterError: Ray is missing, or the cluster does not answer at the address.
        """
        ray = import_ray()
        if not ray.is_initialized():
            self.address = resolve_address(self.address, os.environ)  # auto: RAY_ADDRESS only (T1)
            try:
                ray.init(
                    address=self.address,
                    namespace=RAY_NAMESPACE,  # placement groups and launcher actors found by name after a restart
                    _node_ip_address=_driver_ip(self.address),
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ClusterError(f"cannot join the Ray cluster at {self.address}: {exc}", hint=HEAD_HINT) from None
        return ray

    def refresh(self) -> tuple[Node, ...]:
        """The alive nodes now, each with its own inventory (probed on the node the first time it is seen).

        A node whose probe fails or takes longer than ``probe_timeout_s`` is left out, its reason in
        ``unprobed`` (by address), and probed again at the next refresh.

        Raises:
            ClusterError: Ray is missing, or the cluster does not answer.
        """
        ray = self.connect()
        try:
            listed = ray.nodes()
        except Exception as exc:  # noqa: BLE001 (Ray's errors share no base we can name before import)
            first = str(exc).strip().split("\n")[0]
            raise ClusterError(f"cannot list the nodes of {self.address}: {first}", hint=HEAD_HINT) from None
        self.ray_nodes = parse_ray_nodes(listed)
        alive = [n for n in self.ray_nodes if n.alive]
        self._inventories = {k: v for k, v in self._inventories.items() if k in {n.node_id for n in alive}}
        self.unprobed = self._probe(ray, [n for n in alive if n.node_id not in self._inventories])
        nodes = []
        for ray_node in alive:
            inventory = self._inventories.get(ray_node.node_id)
            if inventory is not None:
                problems = accounting_problems(ray_node, inventory)
                nodes.append(Node(ray_node.address, replace(inventory, problems=inventory.problems + problems)))
        return tuple(nodes)

    def _probe(self, ray: ModuleType, nodes: list[RayNode]) -> dict[str, str]:
        """Probe ``nodes`` at once, each on itself; keeps their inventories, returns why others failed."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(num_cpus=0, max_retries=0)(probe_this_node)
        refs = {
            task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)).remote(): n
            for n in nodes
        }
        ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=self.probe_timeout_s) if refs else ([], [])
        failed = {}
        for ref in late:
            ray.cancel(ref, force=True)
            failed[refs[ref].address] = f"the probe took over {self.probe_timeout_s:g} s"
        for ref in ready:
            try:
                self._inventories[refs[ref].node_id] = ray.get(ref)
            except ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None)
                failed[refs[ref].address] = cause.message if isinstance(cause, TuxaiError) else str(exc).split("\n")[0]
        return failed


def cluster_nodes(address: str) -> tuple[Node, ...]:
    """The alive nodes of the Ray cluster at ``address``, each with the inventory probed on it.

    Raises:
        ClusterError: Ray is missing, the cluster does not answer, or a node's probe failed.
    """
    return ClusterView(address).refresh()
