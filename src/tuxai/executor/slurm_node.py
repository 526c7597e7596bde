"""One node of a Slurm attempt: ``python -m tuxai.executor.slurm_node RUN_DIR``, run by the batch
script's ``srun`` once on every node, as the job's user (``executor.slurm``).

It reads the attempt's ``launch.json``, works out this node's part of the launch contract
(``model.launch``: MASTER_ADDR from the first host of ``SLURM_JOB_NODELIST``, the port every
node derives alike from the job and attempt, NODE_RANK from ``SLURM_NODEID``), writes the node's
own run directory (``node-<rank>/run-<restart>``: a requeue by Slurm is a fresh one) and runs
tuxai's shim in it, exactly as locally: the job's environment, its log, SIGTERM → grace →
SIGKILL, status.json. GPUs are Slurm's choice: its ``CUDA_VISIBLE_DEVICES`` … are kept. A job
with an image runs in it through podman on this node, its GPUs by CDI name from Slurm's choice
(``executor.slurm_container``). It exits with the job's exit status, so ``srun
--kill-on-bad-exit`` ends the other nodes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tuxai.executor.environment import DEVICE_VARIABLES
from tuxai.executor.rundir import CHECKPOINT, ENDPOINT, STOP, Launch, rank_output, read_status, write_launch
from tuxai.executor.shim import EXIT_CANNOT_START, run_attempt
from tuxai.executor.slurm_container import node_container
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.container import read_cdi_specs
from tuxai.model.gang import Launcher
from tuxai.model.launch import gang_of, node_launch, preferred_port
from tuxai.model.slurm import expand_hostlist

SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_NODEID", "SLURM_JOB_NODELIST", "SLURM_NNODES", "SLURM_RESTART_COUNT")


def node_address(host: str) -> str:
    """A node's address: its name resolved, else Slurm's ``NodeAddr`` for it (nodes named apart from their host)."""
    for name in (host, _node_addr(host)):
        if not name:
            continue
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue
        if infos:
            return str(infos[0][4][0])
    return host


def _node_addr(node: str) -> str:
    try:
        text = subprocess.run(
            ["scontrol", "show", "node", "-o", node], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return next((word.split("=", 1)[1] for word in text.split() if word.startswith("NodeAddr=")), "")


def node_run(run_dir: Path, environ: dict[str, str]) -> tuple[Path, Launch]:
    """This node's run directory and ``Launch``, from the attempt's ``launch.json`` and Slurm's variables."""
    base = json.loads((run_dir / "launch.json").read_text())
    gang_fields = base.pop("gang")
    rank = int(environ.get("SLURM_NODEID", "0"))
    hosts = expand_hostlist(environ.get("SLURM_JOB_NODELIST", "")) or [socket.gethostname()]
    command = tuple(base.pop("command"))
    env = {k: v for k, v in base.pop("env").items() if k not in DEVICE_VARIABLES}
    env.update({k: environ[k] for k in (*DEVICE_VARIABLES, *SLURM_VARIABLES) if k in environ})
    if gang_fields["launcher"]:
        launcher = Launcher(gang_fields["launcher"])
        gang = gang_of(
            int(gang_fields["nodes"]), int(gang_fields["gpus_per_node"]), launcher, int(gang_fields["procs_per_node"])
        )
        addresses = [node_address(hosts[0]), *hosts[1:]][: gang.nodes]
        port = preferred_port(int(base["job_id"]), int(base["attempt"]))
        node = node_launch(gang, command, addresses, port, rank, (int(base["job_id"]), int(base["attempt"])))
        command, env = node.command, {**env, **node.env}
    container = None
    if base.get("container"):  # the job's image: this node's GPUs by CDI name, its checkpoint and endpoint mounted
        checkpoint, endpoint = run_dir.parent / CHECKPOINT, run_dir.parent / ENDPOINT  # made at prepare (0711 dir)
        endpoint_file = str(endpoint) if endpoint.is_file() else ""
        specs, problems = read_cdi_specs()
        container, inside = node_container(base["container"], environ, specs, str(checkpoint), endpoint_file, problems)
        env.update(inside)
    restart = environ.get("SLURM_RESTART_COUNT", "0")
    log = str(Path(base.pop("log_path")).with_name(rank_output(rank)))  # rank r: output.rank<r>.log
    launch = Launch(
        log_path=log,
        **{
            **base,
            "command": command,
            "env": env,
            "cgroup": CgroupPlan(),
            "user": None,
            "job_dir": "",
            "time_limit_s": None,
            "cpus": (),
            "devices": (),
            "container": container,
        },
    )
    return run_dir / f"node-{rank}" / f"run-{int(restart) if restart.isdecimal() else 0}", launch


def link_stop(node_dir: Path) -> None:
    """The node's ``stop.json`` is a link to the attempt's (``../../stop.json``): the shim, run as the
    user, reads the stop the daemon asked, before or after this node started; root writes nothing here."""
    os.symlink(Path("..", "..", STOP), node_dir / STOP)


def main(argv: list[str]) -> int:
    """Run this node's shim; exit with the job's status (128 + signal when a signal ended it)."""
    if len(argv) != 1:
        print("usage: python -m tuxai.executor.slurm_node RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    node_dir, launch = node_run(run_dir, dict(os.environ))
    write_launch(node_dir, launch)
    link_stop(node_dir)
    run_attempt(node_dir)
    status = read_status(node_dir)
    if status is None:
        return EXIT_CANNOT_START
    if status.signal is not None:
        return 128 + status.signal
    return status.exit_code if status.exit_code is not None else (1 if status.error else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
