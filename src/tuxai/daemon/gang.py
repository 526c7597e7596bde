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
from tuxai.model.launch import NodeLaunch, gang_of, node_launch, preferred_port
from tuxai.model.resources import Allocation

LOCAL_MASTER = "127.0.0.1"  # one node: its ranks meet on loopback


def check_gang(spec: JobSpec, inventory: Inventory) -> None:
    """Refuse a gang of more nodes than this daemon runs (one: the local executor).

    Raises:
        UsageError: ``--nodes 2`` or more, in one line naming this daemon's shape.
    """
    if spec.launcher is None or spec.nodes <= 1:
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
    gang = gang_of(1, len(allocation.gpus), launcher)
    try:
        port = free_port(master, preferred_port(job.id, attempt))
    except UsageError:
        port = preferred_port(job.id, attempt)
    return node_launch(gang, job.spec.command, (master,), port, 0, (job.id, attempt))
