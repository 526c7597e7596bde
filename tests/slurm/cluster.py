"""A two-node Slurm on this one machine for the Slurm tier: munge, slurmctld and two slurmd (``-N n1``,
``-N n2``) with two fake GPUs each (device files made with mknod, declared in gres.conf).

Everything lives in one temporary directory (its own slurm.conf, found through ``SLURM_CONF``;
state, spool, logs, the fake GPUs), on ports found free at start: nothing in /etc is touched. The
configuration is ``../shared/reference/slurm-two-nodes.md``'s, as root (``SlurmUser=root``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
NODES = ("n1", "n2")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def slurm_conf(root: Path, host: str, ports: list[int]) -> str:
    """The cluster's slurm.conf: ``ports`` are slurmctld's, then one per node."""
    node_ports = ",".join(str(p) for p in ports[1:])
    return "\n".join(
        [
            "ClusterName=tuxai",
            f"SlurmctldHost={host}",
            f"SlurmctldPort={ports[0]}",
            "SlurmUser=root",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool/%n",
            f"SlurmctldPidFile={root}/slurmctld.pid",
            f"SlurmdPidFile={root}/slurmd-%n.pid",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=2",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "GresTypes=gpu",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={root}/jobcomp.log",
            "JobAcctGatherType=jobacct_gather/none",
            f"SlurmctldLogFile={root}/slurmctld.log",
            f"SlurmdLogFile={root}/slurmd-%n.log",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=600",
            "KillWait=5",
            f"NodeName=n[1-2] NodeHostname={host} Port={node_ports} CPUs=2 RealMemory=4000 Gres=gpu:fake:2"
            " State=UNKNOWN",
            "PartitionName=gpu Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP",
            "DefMemPerCPU=500",
            "",
        ]
    )


@dataclass
class Cluster:
    """A running two-node cluster: its directory and the environment its commands need."""

    root: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]
    munged: subprocess.Popen[bytes] | None

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A Slurm command against this cluster."""
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, check=check, timeout=30)

    def stop(self) -> None:
        """Stop every daemon this cluster started (munged only when it started it) and remove its directory."""
        with contextlib.suppress(subprocess.SubprocessError, OSError, RuntimeError):
            self.run("scancel", "--partition=gpu", check=False)  # every job left, on both nodes
            # until their steps are gone: a slurmd stopped under a running step leaves its slurmstepd
            _wait(lambda: not self.run("squeue", "-h", "-t", "RUNNING,COMPLETING", check=False).stdout.strip(), 30, "")
        for process in [*self.processes, *([self.munged] if self.munged else [])]:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in [*self.processes, *([self.munged] if self.munged else [])]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _munge() -> subprocess.Popen[bytes] | None:
    if MUNGE_SOCKET.exists() and subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode == 0:
        return None  # one runs already: leave it
    for path in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        Path(path).mkdir(parents=True, exist_ok=True)
        shutil.chown(path, "munge", "munge")
    os.chmod("/var/log/munge", 0o700)
    process = subprocess.Popen(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground"])
    _wait(lambda: MUNGE_SOCKET.exists(), 10, "munged's socket")
    return process


def _wait(ready: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within {timeout_s} s")


def start() -> Cluster:
    """Bring the cluster up (as root): munge, slurmctld, slurmd n1 and n2, both nodes idle."""
    root = Path(tempfile.mkdtemp(prefix="tuxai-slurm-"))
    root.chmod(0o755)
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    for index in range(2):
        os.mknod(root / f"fakegpu{index}", 0o666 | 0o020000, os.makedev(1, 3))  # /dev/null's numbers
    (root / "slurm.conf").write_text(slurm_conf(root, host, _free_ports(1 + len(NODES))))
    (root / "gres.conf").write_text(f"NodeName=n[1-2] Name=gpu Type=fake File={root}/fakegpu[0-1]\n")
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    cluster = Cluster(root, env, [], None)
    try:
        cluster.munged = _munge()
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # their logs are in ``root``
        cluster.processes.append(subprocess.Popen(["slurmctld", "-D", "-i"], env=env, **quiet))
        _wait(lambda: cluster.run("scontrol", "ping", check=False).returncode == 0, 30, "slurmctld")
        for node in NODES:
            cluster.processes.append(subprocess.Popen(["slurmd", "-D", "-N", node], env=env, **quiet))

        def idle() -> bool:
            out = cluster.run("sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout.split()
            return out.count("idle") == len(NODES)

        _wait(idle, 30, "both slurmd")
    except BaseException:
        cluster.stop()
        raise
    return cluster
