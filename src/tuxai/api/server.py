"""The daemon process: ``python -m tuxai.api.server --home DIR [--inventory FILE] [--tcp HOST:PORT]``.

``tuxai up`` runs this. One daemon per home (``daemon.lock``); the store, the socket, the
token and the jobs' directories live in the home, checked first (``tuxai.api.home``):

    <home>/tuxai.db      the store (SQLite, WAL)
    <home>/tuxai.sock    the API (HTTP on a Unix socket; SO_PEERCRED says who asks)
    <home>/notify.sock   shims say "my job ended" here (a datagram; the loop wakes; ``api.notify``)
    <home>/token         bearer token for TCP (0600); <home>/tcp.addr the address in use
    <home>/jobs/<id>/    output.log, checkpoint/, run-<attempt>/ (see executor.rundir)

Prometheus has a listener of its own (``--metrics-addr``) serving ``/metrics`` and nothing
else. Log lines (a failing tick with its traceback) go to stderr with their time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path

import uvicorn

from tuxai.api.app import Auth, MetricsApp, create_app
from tuxai.api.home import check_home, lock_home, open_private, prepare_store, read_private, unix_socket, write_private
from tuxai.api.notify import notify_listener
from tuxai.api.peercred import PeerCredProtocol
from tuxai.daemon.core import Daemon, DaemonConfig, run_loop
from tuxai.daemon.health import LoopHealth
from tuxai.daemon.telemetry import POLICIES, TelemetryLoop
from tuxai.errors import TuxaiError, UsageError
from tuxai.executor.local import LocalExecutor
from tuxai.hardware.cgroups import CgroupSupport, detect_cgroups
from tuxai.hardware.probe import ProbeOptions, collect_inventory
from tuxai.hardware.simulated import load_inventory_file
from tuxai.hardware.source import LiveSource
from tuxai.model.inventory import Inventory
from tuxai.model.jobfile import parse_duration
from tuxai.scheduler.config import SchedulerConfig, parse_scheduler_config
from tuxai.store.jobs import Store
from tuxai.telemetry.collector import Telemetry, TelemetryConfig
from tuxai.telemetry.detection import DetectionConfig
from tuxai.telemetry.samplers import sampler_for

PERIOD_S = 5.0  # the slow tick: a safety net under the event-driven one
STALE_PERIODS = 3  # /v1/health answers 503 after this many periods without a good tick
DEFAULT_METRICS = "127.0.0.1:9465"
log = logging.getLogger("tuxai.daemon")


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


def _token(home: Path) -> str:
    path = home / "token"
    with contextlib.suppress(FileExistsError):
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return read_private(path).strip()


@contextlib.contextmanager
def _home_file() -> Generator[None, None, None]:
    """A home's file that is a link, or not the daemon's own regular file: one line, not a traceback."""
    try:
        yield
    except OSError as exc:
        what = "a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise UsageError(
            f"cannot use {exc.filename}: {what}",
            hint="the home's files must be the daemon's own regular files, never links: remove it",
        ) from None


def _address(address: str, flag: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"{flag} must be HOST:PORT, got {address!r}", hint=f"e.g. {flag} 127.0.0.1:8765 (port 0: any)")
    return host.strip("[]"), int(port)


def loopback(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback one (127.0.0.0/8, ::1, localhost)."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in found)


def _check_tcp(address: str, insecure: bool) -> None:
    """Refuse a non-loopback ``--tcp`` unless ``--insecure-tcp``: the bearer token would cross the network in clear."""
    host, _ = _address(address, "--tcp")
    if not insecure and not loopback(host):
        raise UsageError(
            f"--tcp {address} is not a loopback address: the API and its bearer token would travel in plain HTTP",
            hint="listen on 127.0.0.1 and put a TLS proxy in front, or pass --insecure-tcp",
        )


def _tcp_socket(address: str, flag: str = "--tcp") -> socket.socket:
    host, port = _address(address, flag)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {address}: {exc.strerror}", hint="pick another port") from None
    sock.listen(512)
    return sock


def _metrics_socket(address: str, explicit: bool) -> socket.socket | None:
    """The Prometheus socket; the default address may be taken (another daemon): then none, said in the log."""
    try:
        return _tcp_socket(address, "--metrics-addr")
    except UsageError as exc:
        if explicit:
            raise
        log.warning("no Prometheus endpoint on TCP: %s (set --metrics-addr)", exc.message)
        return None


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
    disabled = CgroupSupport(0, problem="disabled with --no-cgroups")
    cgroups = disabled if args.no_cgroups else detect_cgroups(prepare=True)
    return DaemonConfig(
        home=home,
        inventory=_inventory(Path(args.inventory) if args.inventory else None),
        scheduler=scheduler,
        cgroups=cgroups,
        online_cpus=tuple(sorted(os.sched_getaffinity(0))),
        cgroup_every_job=args.cgroup_every_job,
        job_pids_max=max(0, args.job_pids_max),
        keep_finished_s=args.keep_finished,
        notify_socket=str(home / "notify.sock"),
    )


class _Sidecar(uvicorn.Server):
    """A second server in the daemon's event loop (Prometheus); the API server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave SIGINT and SIGTERM to the API server, which stops this one."""
        yield


def _uvicorn(app: object, http: object = "httptools") -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        http=http,  # type: ignore[arg-type]
        proxy_headers=False,
        access_log=False,
        log_level="warning",
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=5,
    )


async def _serve_all(
    api: uvicorn.Server, sockets: list[socket.socket], metrics: tuple[_Sidecar, socket.socket] | None
) -> None:
    task = asyncio.create_task(metrics[0].serve(sockets=[metrics[1]])) if metrics else None
    try:
        await api.serve(sockets=sockets)
    finally:
        if metrics is not None and task is not None:
            metrics[0].should_exit = True
            await task


def serve(args: argparse.Namespace) -> int:
    """Run the daemon until SIGINT, SIGTERM or ``POST /v1/shutdown``.

    Raises:
        UsageError: a bad flag, or a home that is not safe to use (``api.home.check_home``).
        DaemonError: another daemon runs for this home.
    """
    if args.tcp:
        _check_tcp(args.tcp, args.insecure_tcp)
    home = check_home(Path(args.home))
    with _home_file():
        lock = lock_home(home)
    try:
        return _run(args, home)
    finally:
        os.close(lock)  # last: `tuxai down` waits for it, and the store is closed by now


def _run(args: argparse.Namespace, home: Path) -> int:
    config = build_config(args)
    with _home_file():
        prepare_store(home / "tuxai.db")
    store = Store(home / "tuxai.db")
    executor = LocalExecutor(home / "logs")
    daemon = Daemon(config, store, executor)
    stop = threading.Event()
    notify = notify_listener(home / "notify.sock", daemon, stop)
    daemon.reconcile(time.time())
    tick = LoopHealth("tick", stale_after_s=STALE_PERIODS * args.tick_period)
    loop = threading.Thread(
        target=run_loop, args=(daemon, stop, args.tick_period), kwargs={"health": tick}, name="tick", daemon=True
    )
    loop.start()
    daemon.wake.set()
    telemetry = TelemetryLoop(daemon, _telemetry(args, config), policy=args.on_hung)
    threading.Thread(target=telemetry.run, args=(stop,), name="telemetry", daemon=True).start()

    with _home_file():
        sockets = [unix_socket(home / "tuxai.sock", socket.SOCK_STREAM, 0o666 if os.getuid() == 0 else 0o600)]
    sockets[0].listen(512)
    token = ""
    if args.tcp:
        tcp = _tcp_socket(args.tcp)
        sockets.append(tcp)
        host, port = tcp.getsockname()[:2]
        with _home_file():
            token = _token(home)
            write_private(home / "tcp.addr", f"{host}:{port}\n")
    metrics_address = ""
    metrics = _metrics_socket(args.metrics_addr or DEFAULT_METRICS, explicit=bool(args.metrics_addr))
    sidecar = None
    if metrics is not None:
        host, port = metrics.getsockname()[:2]
        metrics_address = f"{host}:{port}"
        with _home_file():
            write_private(home / "metrics.addr", metrics_address + "\n")
        sidecar = (_Sidecar(_uvicorn(MetricsApp(telemetry.metrics), PeerCredProtocol)), metrics)  # heads capped
    app = create_app(daemon, Auth(os.getuid(), token), telemetry, metrics_address, private_queue=args.private_queue)
    app.state.tick = tick
    server = uvicorn.Server(_uvicorn(app, PeerCredProtocol))
    app.state.shutdown = lambda: setattr(server, "should_exit", True)
    print(
        f"tuxai daemon {os.getpid()} up: {home / 'tuxai.sock'}"
        + (f", tcp {args.tcp}" if args.tcp else "")
        + f", {len(config.inventory.gpus)} GPUs ({config.inventory.source}), cgroups "
        + (f"v{config.cgroups.version}" if config.cgroups.version else f"off: {config.cgroups.problem}"),
        flush=True,
    )
    try:
        asyncio.run(_serve_all(server, sockets, sidecar))
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
        log.info("daemon %d stopped; running jobs go on and are adopted at the next start", os.getpid())
    return 0


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    p.add_argument("--tcp", help="also listen on HOST:PORT (bearer token in <home>/token); a loopback address")
    p.add_argument("--private-queue", action="store_true", help="users see only their own jobs, not the queue")
    p.add_argument(
        "--insecure-tcp", action="store_true", help="allow --tcp on a non-loopback address (the token travels in clear)"
    )
    p.add_argument(
        "--tick-period",
        type=_positive,
        default=PERIOD_S,
        help=f"seconds between safety ticks ({PERIOD_S:g}); /v1/health answers 503 after {STALE_PERIODS} without one",
    )
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
        "--cgroup-every-job", action="store_true", help="memory and cpu groups for every job, not only with --mem"
    )
    p.add_argument(
        "--keep-finished",
        type=_duration,
        default=365 * 86400.0,
        help="keep ended jobs, their logs and checkpoints this long (e.g. 90d; 0: forever)",
    )
    p.add_argument(
        "--job-pids-max", type=int, default=16384, help="tasks (processes + threads) one job may have; 0: no cap"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; a ``TuxaiError`` is one line on stderr and exit 2."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(args)
    except TuxaiError as exc:
        print(f"error: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
