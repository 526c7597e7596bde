"""Multi-node jobs on this daemon: what the local executor (one node) can run, and its node's launch.

A gang of one node runs here with the launch contract's variables (``model.launch``) and,
under ``--launcher torchrun``, torchrun's line around the command; a gang of more nodes needs
a cluster engine and is refused at submit, naming what this daemon has.
"""

from __future__ import annotations

from tuxai.errors import UsageError
from tuxai.executor.launch import free_port
from tuxai.model.inventory import Inventory
from tuxai.model.job import JobRecord, JobSpec
from tuxai.model.launch import NodeLaunch, gang_of, node_environment, node_launch, preferred_port
from tuxai.model.resources import Allocation
from tuxai.scheduler.admission import gang_rejection
from tuxai.scheduler.snapshot import Node

LOCAL_MASTER = "127.0.0.1"  # one node: its ranks meet on loopback


def check_gang(spec: JobSpec, inventory: Inventory, cluster: tuple[Node, ...] | None = None) -> None:
    """Refuse a gang of more nodes than this daemon runs (one with the local executor; on a
    ``cluster``, what no set of its nodes could ever hold), or one that exports a variable of the
    launch contract (MASTER_ADDR, PET_NODE_RANK …: tuxai sets them).

    Raises:
        UsageError: ``--nodes 2`` or more, in one line naming this daemon's or the cluster's shape; such an export.
    """
    if spec.launcher is None:
        return
    ours = node_environment(gang_of(1, 0, spec.launcher), (LOCAL_MASTER,), 1, 0, 0, 0)
    exported = sorted(name for name, _ in spec.exports if name in ours)
    if exported:
        raise UsageError(
            f"export: {', '.join(exported)} is set by tuxai for a multi-node job and cannot be exported",
            hint="the launch contract sets MASTER_ADDR, WORLD_SIZE, NODE_RANK, PET_* … on every node",
        )
    if spec.nodes <= 1:
        return
    if cluster is not None:
        reason = gang_rejection(spec.request, spec.nodes, cluster)
        if reason is not None:
            raise UsageError(f"impossible gang: {reason}", hint="ask for fewer nodes or a smaller share of each")
        return
    gpus = len(inventory.gpus)
    raise UsageError(
        f"this daemon runs one node (local executor: {gpus} GPU{'' if gpus == 1 else 's'}); "
        f"--nodes {spec.nodes} needs a cluster engine (tuxai up --ray, issue 15)",
        hint="--nodes 1 runs the gang on this node",
    )


def local_node_launch(job: JobRecord, allocation: Allocation, attempt: int, master: str = LOCAL_MASTER) -> NodeLaunch:
    """The one node's command and variables for a gang job here: its GPUs are the scheduler's choice.

    The master port is the job's own (``preferred_port``) or the next free one; with none free
    the job still starts on its own port, and torchrun's bind error is in its log.
    """
    launcher = job.spec.launcher
    if launcher is None:
        return NodeLaunch(job.spec.command, {})
    gang = gang_of(1, len(allocation.gpus), launcher, job.spec.procs_per_node)
    try:
        port = free_port(master, preferred_port(job.id, attempt))
    except UsageError:
        port = preferred_port(job.id, attempt)
    return node_launch(gang, job.spec.command, (master,), port, 0, (job.id, attempt))
