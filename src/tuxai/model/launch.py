"""The launch contract: what every node of a job gets, whichever engine runs it (local, Ray, Slurm, k8s).

``node_launch(gang, command, hosts, master_port, node_rank, job)`` → the node's environment and
command. Every backend calls it; the variables are the ones torchrun, torch.distributed and the
usual launchers read:

    MASTER_ADDR, MASTER_PORT        the first node's address, a port checked free there
    WORLD_SIZE                      every process of the gang: nodes × processes per node
    NNODES, NODE_RANK, NPROC_PER_NODE
    PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR, PET_MASTER_PORT,
    PET_RDZV_BACKEND=static, PET_RDZV_ENDPOINT, PET_RDZV_ID, PET_MAX_RESTARTS=0
                                    torchrun's own options as variables (torch/distributed/run.py
                                    reads ``PET_<OPTION>`` before its defaults)
    TUXAI_NODES, TUXAI_NNODES, TUXAI_NODE_RANK, TUXAI_NPROC_PER_NODE, TUXAI_LAUNCHER,
    TUXAI_MASTER_ADDR, TUXAI_MASTER_PORT
                                    the same facts under tuxai's names

``--launcher torchrun`` runs ``python train.py …`` as ``torchrun --nnodes N --nproc-per-node P
--node-rank R --master-addr A --master-port P --max-restarts 0 train.py …``: one failed rank
ends the node's torchrun, which stops its other ranks. ``--launcher none`` runs the command as
given. Pure: the master port's bind test is ``executor.launch.free_port``; the k8s export
(``tuxai.k8s``) uses the same variables and words.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from tuxai.errors import UsageError
from tuxai.model.gang import Launcher, torchrun_target

PORT_LOW, PORT_HIGH = 20000, 29999  # below the usual ephemeral range (32768-60999): a bind test means something


@dataclass(frozen=True)
class Gang:
    """A job's shape on its nodes: ``nodes`` × ``procs_per_node`` processes, ``gpus_per_node`` GPUs each node."""

    nodes: int
    gpus_per_node: int
    procs_per_node: int
    launcher: Launcher

    @property
    def world_size(self) -> int:
        """Every process of the gang."""
        return self.nodes * self.procs_per_node


def gang_of(nodes: int, gpus_per_node: int, launcher: Launcher, procs_per_node: int = 0) -> Gang:
    """The gang a spec asks for: ``procs_per_node`` processes on each node, else one per GPU (one
    on a node without GPUs).

    >>> gang_of(2, 4, Launcher.TORCHRUN).world_size, gang_of(1, 0, Launcher.TORCHRUN, 4).world_size
    (8, 4)
    """
    return Gang(nodes, gpus_per_node, procs_per_node or max(1, gpus_per_node), launcher)


@dataclass(frozen=True)
class NodeLaunch:
    """What one node's shim runs: the command, with these variables over the job's own."""

    command: tuple[str, ...]
    env: dict[str, str]


def node_environment(
    gang: Gang, hosts: Sequence[str], master_port: int, node_rank: int, job_id: int | str, attempt: int
) -> dict[str, str]:
    """The variables node ``node_rank`` of ``hosts`` gets (``hosts[0]`` is the master).

    >>> env = node_environment(gang_of(2, 2, Launcher.TORCHRUN), ["10.0.0.1", "10.0.0.2"], 29500, 1, 7, 1)
    >>> env["MASTER_ADDR"], env["WORLD_SIZE"], env["PET_NODE_RANK"], env["PET_RDZV_ENDPOINT"]
    ('10.0.0.1', '4', '1', '10.0.0.1:29500')

    Raises:
        UsageError: the node list does not match the gang, or the rank or port is out of range.
    """
    _check(gang, hosts, master_port, node_rank)
    master, port = hosts[0], str(master_port)
    shape = {
        "MASTER_ADDR": master,
        "MASTER_PORT": port,
        "WORLD_SIZE": str(gang.world_size),
        "NNODES": str(gang.nodes),
        "NODE_RANK": str(node_rank),
        "NPROC_PER_NODE": str(gang.procs_per_node),
    }
    torchrun = {
        "PET_NNODES": str(gang.nodes),
        "PET_NPROC_PER_NODE": str(gang.procs_per_node),
        "PET_NODE_RANK": str(node_rank),
        "PET_MASTER_ADDR": master,
        "PET_MASTER_PORT": port,
        "PET_RDZV_BACKEND": "static",
        "PET_RDZV_ENDPOINT": f"{_bracketed(master)}:{port}",
        "PET_RDZV_ID": f"tuxai-{job_id}-{attempt}",
        "PET_MAX_RESTARTS": "0",
    }
    identity = {
        "TUXAI_NODES": ",".join(hosts),
        "TUXAI_NNODES": str(gang.nodes),
        "TUXAI_NODE_RANK": str(node_rank),
        "TUXAI_NPROC_PER_NODE": str(gang.procs_per_node),
        "TUXAI_LAUNCHER": gang.launcher.value,
        "TUXAI_MASTER_ADDR": master,
        "TUXAI_MASTER_PORT": port,
    }
    return {**shape, **torchrun, **identity}


def node_command(
    gang: Gang, command: tuple[str, ...], hosts: Sequence[str], master_port: int, node_rank: int
) -> tuple[str, ...]:
    """The command node ``node_rank`` runs: torchrun's line around the user's, or the user's own.

    >>> node_command(gang_of(1, 2, Launcher.TORCHRUN), ("python", "t.py", "-v"), ["127.0.0.1"], 29500, 0)[-2:]
    ('t.py', '-v')

    Raises:
        UsageError: ``--launcher torchrun`` with a command torchrun cannot take (one line).
    """
    _check(gang, hosts, master_port, node_rank)
    if gang.launcher is Launcher.NONE:
        return command
    target = torchrun_target(command)
    options = (
        *("--nnodes", str(gang.nodes), "--nproc-per-node", str(gang.procs_per_node)),
        *("--node-rank", str(node_rank), "--master-addr", hosts[0], "--master-port", str(master_port)),
        *("--max-restarts", "0"),
    )
    return (target.program, *options, *target.args)


def node_launch(
    gang: Gang,
    command: tuple[str, ...],
    hosts: Sequence[str],
    master_port: int,
    node_rank: int,
    job: tuple[int, int],
) -> NodeLaunch:
    """Node ``node_rank``'s command and variables (``job``: its id and attempt), as every backend gives them."""
    job_id, attempt = job
    return NodeLaunch(
        node_command(gang, command, hosts, master_port, node_rank),
        node_environment(gang, hosts, master_port, node_rank, job_id, attempt),
    )


def _check(gang: Gang, hosts: Sequence[str], master_port: int, node_rank: int) -> None:
    if len(hosts) != gang.nodes or not all(hosts):
        raise UsageError(f"a gang of {gang.nodes} node(s) was given {len(hosts)} address(es): {list(hosts)}")
    if not 0 <= node_rank < gang.nodes:
        raise UsageError(f"node rank {node_rank} is not in 0..{gang.nodes - 1}")
    if not 1 <= master_port <= 65535:
        raise UsageError(f"master port {master_port} is not a TCP port (1-65535)")


def _bracketed(address: str) -> str:
    """An IPv6 address in a ``HOST:PORT`` endpoint needs brackets."""
    return f"[{address}]" if ":" in address else address


def preferred_port(job_id: int, attempt: int) -> int:
    """A port derived from the job and attempt, the same on every node (Slurm's nodes agree without talking).

    >>> preferred_port(12, 1) == preferred_port(12, 1), PORT_LOW <= preferred_port(12, 1) <= PORT_HIGH
    (True, True)
    """
    return PORT_LOW + zlib.crc32(f"{job_id}.{attempt}".encode()) % (PORT_HIGH - PORT_LOW + 1)
