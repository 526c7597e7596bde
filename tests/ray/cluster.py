"""A real Ray cluster on this one machine: a head and worker nodes, each a `ray start` of its own.

Each node has its own loopback address (127.0.0.2 the head, 127.0.0.3, 127.0.0.4 …: not 127.0.0.1,
which Ray swaps for the machine's interface address, see ../shared/reference/ray-local-cluster.md),
its own temp dir and its own ports, and runs in a session of its own: stopping a node ends every
process of that session (never `ray stop`, which ends every Ray process on the machine). Each worker
sees a simulated inventory (``TUXAI_INVENTORY``) and declares its GPUs to Ray twice: ``--num-gpus``
and one ``tuxai_gpu_<uuid>`` resource per GPU (``tuxai.cluster.ray_nodes.gpu_resources``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tuxai.cluster.ray_nodes import gpu_resources
from tuxai.hardware.simulated import inventory_from_yaml

RAY = Path(sys.executable).parent / "ray"
OBJECT_STORE_BYTES = 80_000_000  # Ray's floor is 75 MB


def worker_inventory(hostname: str, gpus: int = 2) -> str:
    """A simulated node: ``gpus`` A100s (UUIDs drawn from the hostname, so each node's differ), 1 core."""
    gpu_text = f"gpus: {{model: NVIDIA A100-SXM4-80GB, count: {gpus}}}\nlinks: NV12\n" if gpus else ""
    return f"host: {{hostname: {hostname}, memory: 4GiB}}\ncpu: {{cores_per_socket: 1}}\n{gpu_text}"


def _free_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def _free_range(ip: str, count: int) -> int:
    """The first port of ``count`` consecutive ports free on ``ip`` (Ray's worker ports)."""
    for base in range(21000 + (os.getpid() % 200) * 40, 60000, count):
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind((ip, port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} free ports on {ip}")


def session_processes(sid: int) -> list[int]:
    """The live (not zombie) processes of session ``sid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry.name))
    return found


@dataclass
class RayNodeProcess:
    """One `ray start` and the session its processes run in (its pid)."""

    name: str
    ip: str
    temp_dir: Path
    inventory: Path
    head: bool = False
    dashboard: bool = False  # the head's full dashboard (Ray's job API: ray[default]); else its minimal one
    dashboard_port: int = 0
    sid: int = 0
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def env_cache(self) -> Path:
        """Where this node builds job environments (``TUXAI_ENV_CACHE`` in its ``ray start``'s environment):
        each node its own, as on machines of their own."""
        return self.temp_dir.parent / f"{self.name}-envs"

    def start(self, head_address: str, gcs_port: int, attempts: int = 2) -> float:
        """Start the node (returns the seconds it took); raises with Ray's output when every attempt failed.

        A second attempt, because `ray start` gives a node 30 s to register with the GCS and a 2-core
        machine under other test runs (load 16) has been seen to miss it.
        """
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(head_address, gcs_port)
            except RuntimeError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, head_address: str, gcs_port: int) -> float:
        ports = {
            "--node-manager-port": _free_port(self.ip),
            "--object-manager-port": _free_port(self.ip),
            "--dashboard-agent-listen-port": _free_port(self.ip),
            "--dashboard-agent-grpc-port": _free_port(self.ip),
            "--metrics-export-port": _free_port(self.ip),
            "--runtime-env-agent-port": _free_port(self.ip),
        }
        workers = _free_range(self.ip, 20)
        args = [str(RAY), "start", f"--node-ip-address={self.ip}", f"--temp-dir={self.temp_dir}"]
        args += [f"{flag}={port}" for flag, port in ports.items()]
        args += [f"--min-worker-port={workers}", f"--max-worker-port={workers + 19}"]
        args += ["--num-cpus=1", f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats"]
        args.append("--include-log-monitor=false")  # jobs' logs are tuxai's; one process fewer per node
        inventory = inventory_from_yaml(self.inventory.read_text(), str(self.inventory))
        args.append(f"--num-gpus={len(inventory.gpus)}")
        if gpu_resources(inventory):
            args.append(f"--resources={json.dumps(gpu_resources(inventory))}")
        if self.head:
            self.dashboard_port = _free_port(self.ip)
            args += ["--head", f"--port={gcs_port}", f"--include-dashboard={str(self.dashboard).lower()}"]
            args += [f"--ray-client-server-port={_free_port(self.ip)}", f"--dashboard-port={self.dashboard_port}"]
            args.append(f"--dashboard-host={self.ip}")
        else:
            args.append(f"--address={head_address}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TUXAI_", "RAY_"))}
        env |= {"TUXAI_INVENTORY": str(self.inventory), "RAY_USAGE_STATS_ENABLED": "0"}
        env["TUXAI_ENV_CACHE"] = str(self.env_cache)
        began = time.monotonic()
        process = subprocess.Popen(
            args, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.sid = process.pid
        output, _ = process.communicate(timeout=90)
        if process.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start of {self.name} failed ({process.returncode}):\n{output[-3000:]}")
        return time.monotonic() - began

    def processes(self) -> list[int]:
        """Its live processes (raylet, agents, workers; the GCS for the head)."""
        return session_processes(self.sid) if self.sid else []

    def stop(self, grace_s: float = 5.0) -> None:
        """End every process of the node's session: SIGTERM, ``grace_s``, then SIGKILL."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not self.processes():
                return


@dataclass
class LocalRayCluster:
    """A head (127.0.0.2) and workers (127.0.0.3 …) with 2 simulated GPUs each, under ``root``."""

    root: Path
    workers: int = 2
    dashboard: bool = False  # Ray's job API on the head (bench/scale.py's baseline)
    gcs_port: int = 0
    nodes: list[RayNodeProcess] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The head's GCS address, ``HOST:PORT``."""
        return f"{self.nodes[0].ip}:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        """Where the head's dashboard (Ray's job API) answers."""
        return f"http://{self.nodes[0].ip}:{self.nodes[0].dashboard_port}"

    def _node(self, name: str, ip: str, gpus: int, head: bool = False) -> RayNodeProcess:
        inventory = self.root / f"{name}.yaml"
        inventory.write_text(worker_inventory(name, gpus))
        return RayNodeProcess(name, ip, self.root / name, inventory, head)

    def start(self) -> None:
        """Start the head, then the workers side by side."""
        self.gcs_port = _free_port("127.0.0.2")
        head = self._node("ray-head", "127.0.0.2", 0, head=True)
        head.dashboard = self.dashboard
        self.nodes = [head]
        self.timings["head"] = head.start(self.address, self.gcs_port)
        self.nodes += [self._node(f"ray-w{i}", f"127.0.0.{3 + i - 1}", 2) for i in range(1, self.workers + 1)]
        began = time.monotonic()
        self.start_workers(self.nodes[1:])
        self.timings["workers"] = time.monotonic() - began

    def start_workers(self, nodes: list[RayNodeProcess]) -> None:
        """Start these worker nodes at once (each a `ray start` in a thread)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(lambda n: n.start(self.address, self.gcs_port), nodes))

    def processes(self) -> list[int]:
        """Every live process of every node."""
        return [pid for node in self.nodes for pid in node.processes()]

    def stop(self) -> None:
        """Stop the workers, then the head."""
        for node in reversed(self.nodes):
            node.stop()
