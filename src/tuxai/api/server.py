"""The daemon process: ``python -m tuxai.api.server --home DIR [--inventory FILE] [--tcp HOST:PORT]``.

``tuxai up`` runs this. One daemon per home (``daemon.lock``); the store, the socket, the
token and the jobs' directories live in the home:

    <home>/tuxai.db      the store (SQLite, WAL)
    <home>/tuxai.sock    the API (HTTP on a Unix socket; SO_PEERCRED says who asks)
    <home>/notify.sock   shims say "my job ended" here (a datagram; the loop wakes)
    <home>/token         bearer token for TCP (0600); <home>/tcp.addr the address in use
    <home>/jobs/<id>/    output.log, checkpoint/, run-<attempt>/ (see executor.rundir)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn

from tuxai.api.app import Auth, create_app
from tuxai.api.peercred import PeerCredProtocol
from tuxai.daemon.core import Daemon, DaemonConfig, run_loop
from tuxai.daemon.telemetry import POLICIES, TelemetryLoop
from tuxai.errors import DaemonError, TuxaiError, UsageError
from tuxai.executor.local import LocalExecutor
from tuxai.hardware.cgroups import CgroupSupport, detect_cgroups
from tuxai.hardware.probe import ProbeOptions, collect_inventory
from tuxai.hardware.simulated import load_inventory_file
from tuxai.hardware.source import LiveSource
from tuxai.model.inventory import Inventory
from tuxai.scheduler.config import SchedulerConfig, parse_scheduler_config
from tuxai.store.jobs import Store
from tuxai.telemetry.collector import Telemetry, TelemetryConfig
from tuxai.telemetry.detection import DetectionConfig
from tuxai.telemetry.samplers import sampler_for

PERIOD_S = 5.0  # the slow tick: a safety net under the event-driven one
DEFAULT_METRICS = "127.0.0.1:9465"


def _telemetry(args: argparse.Namespace, config: DaemonConfig) -> Telemetry:
    inventory = config.inventory
    sampler = sampler_for(list(inventory.gpus), simulated=inventory.source.startswith("simulated"))
    detection = DetectionConfig(idle_after_s=args.idle_after, hung_after_s=args.hung_after)
    return Telemetry(
        sampler,
        TelemetryConfig(
            period_s=args.telemetry_period,
            watts_per_cpu=args.watts_per_cpu,
            grid_g_per_kwh=args.grid_intensity,
            pue=args.pue,
            detection=detection,
        ),
    )


def _lock_home(home: Path) -> int:
    home.mkdir(parents=True, exist_ok=True, mode=0o755 if os.getuid() == 0 else 0o700)
    fd = os.open(home / "daemon.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode().strip() or "?"
        os.close(fd)
        raise DaemonError(f"a tuxai daemon already runs for {home} (pid {pid})", hint="`tuxai down` stops it") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _token(home: Path) -> str:
    path = home / "token"
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def _unix_socket(path: Path, mode: int) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # stale from a killed daemon: the home lock says nobody else owns it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, mode)
    sock.listen(512)
    return sock


def _tcp_socket(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--tcp must be HOST:PORT, got {address!r}", hint="e.g. --tcp 127.0.0.1:8765 (port 0: any)")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {address}: {exc.strerror}", hint="pick another port") from None
    sock.listen(512)
    return sock


def _metrics_socket(address: str, explicit: bool) -> socket.socket | None:
    """The Prometheus socket; the default address may be taken (another daemon): then none, said in the log."""
    try:
        return _tcp_socket(address)
    except UsageError as exc:
        if explicit:
            raise
        print(f"warning: no Prometheus endpoint on TCP: {exc.message} (set --metrics-addr)", flush=True)
        return None


def _notify_listener(path: Path, daemon: Daemon, stop: threading.Event) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    os.chmod(path, 0o666 if os.getuid() == 0 else 0o600)

    def listen() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(64)
            except OSError:
                return
            if data.strip().isdigit():
                daemon.ended(int(data))
            else:
                daemon.wake.set()

    threading.Thread(target=listen, name="notify", daemon=True).start()
    return sock


def _inventory(path: Path | None) -> Inventory:
    if path is not None:
        return load_inventory_file(path)
    return collect_inventory(LiveSource(timeout_s=10.0), ProbeOptions(frameworks=False))


def build_config(args: argparse.Namespace) -> DaemonConfig:
    """The daemon's configuration from its flags (reads the inventory and the policy file)."""
    home = Path(args.home).expanduser().resolve()
    scheduler = SchedulerConfig()
    if args.scheduler_config:
        path = Path(args.scheduler_config)
        if not path.is_file():
            raise UsageError(f"scheduler config {path} does not exist", hint="check the path")
        scheduler = parse_scheduler_config(path.read_text(), str(path))
    cgroups = CgroupSupport(0, problem="disabled with --no-cgroups") if args.no_cgroups else detect_cgroups()
    return DaemonConfig(
        home=home,
        inventory=_inventory(Path(args.inventory) if args.inventory else None),
        scheduler=scheduler,
        cgroups=cgroups,
        online_cpus=tuple(sorted(os.sched_getaffinity(0))),
        cgroup_every_job=args.cgroup_every_job,
        notify_socket=str(home / "notify.sock"),
    )


def serve(args: argparse.Namespace) -> int:
    """Run the daemon until SIGINT, SIGTERM or ``POST /v1/shutdown``."""
    home = Path(args.home).expanduser().resolve()
    lock = _lock_home(home)
    config = build_config(args)
    store = Store(home / "tuxai.db")
    executor = LocalExecutor(home / "logs")
    daemon = Daemon(config, store, executor)
    stop = threading.Event()
    notify = _notify_listener(home / "notify.sock", daemon, stop)
    daemon.reconcile(time.time())
    loop = threading.Thread(target=run_loop, args=(daemon, stop, PERIOD_S), name="tick", daemon=True)
    loop.start()
    daemon.wake.set()
    telemetry = TelemetryLoop(daemon, _telemetry(args, config), policy=args.on_hung)
    threading.Thread(target=telemetry.run, args=(stop,), name="telemetry", daemon=True).start()

    sockets = [_unix_socket(home / "tuxai.sock", 0o666 if os.getuid() == 0 else 0o600)]
    token = ""
    if args.tcp:
        tcp = _tcp_socket(args.tcp)
        sockets.append(tcp)
        token = _token(home)
        host, port = tcp.getsockname()[:2]
        (home / "tcp.addr").write_text(f"{host}:{port}\n")
    metrics_address = ""
    metrics = _metrics_socket(args.metrics_addr or DEFAULT_METRICS, explicit=bool(args.metrics_addr))
    if metrics is not None:
        sockets.append(metrics)
        host, port = metrics.getsockname()[:2]
        metrics_address = f"{host}:{port}"
        (home / "metrics.addr").write_text(metrics_address + "\n")
    app = create_app(daemon, Auth(owner_uid=os.getuid(), token=token), telemetry, metrics_address)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=PeerCredProtocol,
            proxy_headers=False,
            access_log=False,
            log_level="warning",
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=5,
        )
    )
    app.state.shutdown = lambda: setattr(server, "should_exit", True)
    print(
        f"tuxai daemon {os.getpid()} up: {home / 'tuxai.sock'}"
        + (f", tcp {args.tcp}" if args.tcp else "")
        + f", {len(config.inventory.gpus)} GPUs ({config.inventory.source}), cgroups "
        + (f"v{config.cgroups.version}" if config.cgroups.version else f"off: {config.cgroups.problem}"),
        flush=True,
    )
    try:
        asyncio.run(server.serve(sockets=sockets))
    finally:
        stop.set()
        daemon.wake.set()
        loop.join(timeout=10)
        notify.close()
        executor.close()
        store.close()
        for name in ("tuxai.sock", "notify.sock", "tcp.addr", "metrics.addr"):
            with contextlib.suppress(FileNotFoundError):
                (home / name).unlink()
        os.close(lock)
        print(f"tuxai daemon {os.getpid()} stopped; running jobs go on and are adopted at the next start", flush=True)
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    """The daemon's flags (``tuxai up`` passes them on)."""
    p = argparse.ArgumentParser(prog="python -m tuxai.api.server", description="The tuxai daemon.")
    p.add_argument("--home", required=True, help="data, socket and logs")
    p.add_argument("--inventory", help="a simulated inventory (YAML) instead of this machine")
    p.add_argument("--tcp", help="also listen on HOST:PORT (bearer token in <home>/token)")
    p.add_argument("--scheduler-config", help="policy weights (docs/scheduler.md)")
    p.add_argument("--no-cgroups", action="store_true", help="do not put jobs in cgroups")
    p.add_argument("--metrics-addr", help=f"Prometheus endpoint HOST:PORT (default {DEFAULT_METRICS}; port 0: any)")
    p.add_argument("--telemetry-period", type=_positive, default=1.0, help="seconds between samples")
    p.add_argument("--idle-after", type=_positive, default=600.0, help="seconds of idle GPUs before a job is idle")
    p.add_argument("--hung-after", type=_positive, default=1800.0, help="seconds without progress before hung")
    p.add_argument("--on-hung", choices=POLICIES, default="none", help="what to do with a hung job")
    p.add_argument("--grid-intensity", type=_positive, default=475.0, help="grid carbon intensity, gCO2e/kWh")
    p.add_argument("--pue", type=_positive, default=1.0, help="power usage effectiveness of the room")
    p.add_argument("--watts-per-cpu", type=_positive, default=10.0, help="CPU estimate without RAPL")
    p.add_argument(
        "--cgroup-every-job", action="store_true", help="a cgroup for every job, not only those with --mem"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; a ``TuxaiError`` is one line on stderr and exit 2."""
    args = parser().parse_args(argv)
    try:
        return serve(args)
    except TuxaiError as exc:
        print(f"error: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
