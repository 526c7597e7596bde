"""The daemon process: ``python -m tuxai.api.server [--home DIR] [--inventory FILE] [--tcp HOST:PORT] …``.

``tuxai up`` runs this. One daemon per home (``daemon.lock``); the store, the socket, the
token and the jobs' directories live in the home, checked first (``tuxai.api.home``):

    <home>/tuxai.db      the store (SQLite, WAL)
    <home>/tuxai.sock    the API (HTTP on a Unix socket; SO_PEERCRED says who asks)
    <home>/notify.sock   shims say "my job ended" here (a datagram; the loop wakes; ``api.notify``)
    <home>/token         bearer token for TCP (0600); <home>/tcp.addr the address in use
    <home>/jobs/<id>/    output.log, checkpoint/, run-<attempt>/ (see executor.rundir)

Prometheus has a listener of its own (``--metrics-addr``) serving ``/metrics`` and nothing
else. Its flags are built from ``tuxai.settings.DaemonSettings`` (as ``tuxai up``'s are), each
also a ``TUXAI_*`` variable and a key of the config file's ``daemon:``. Log lines (a failing
tick with its traceback) go to stderr through ``logging`` (``tuxai.logs``: with their time, or
plain for journald), at ``--log-level``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import typing
from collections.abc import Generator
from pathlib import Path

import uvicorn

from tuxai.api.app import Auth, MetricsApp, create_app
from tuxai.api.home import check_home, lock_home, open_private, prepare_store, read_private, unix_socket, write_private
from tuxai.api.notify import notify_listener
from tuxai.api.peercred import PeerCredProtocol
from tuxai.daemon.core import Daemon, DaemonConfig
from tuxai.daemon.health import LoopHealth
from tuxai.daemon.limits import load_quotas, reload_quotas
from tuxai.daemon.loop import run_loop
from tuxai.daemon.ray_engine import ray_daemon
from tuxai.daemon.slurm import slurm_daemon
from tuxai.daemon.telemetry import TelemetryLoop
from tuxai.edge.listen import is_loopback, listen_tcp, parse_address
from tuxai.errors import TuxaiError, UsageError
from tuxai.executor.local import LocalExecutor
from tuxai.hardware.cgroups import CgroupSupport, detect_cgroups
from tuxai.hardware.probe import ProbeOptions, collect_inventory
from tuxai.hardware.simulated import load_inventory_file, load_simulated_processes
from tuxai.hardware.source import LiveSource
from tuxai.logs import configure_logging
from tuxai.model.inventory import Inventory
from tuxai.model.mapping import declared_fields
from tuxai.scheduler.config import SchedulerConfig, parse_scheduler_config
from tuxai.settings import (
    CONFIG_HELP,
    DEFAULT_METRICS_ADDR,
    HOME_HELP,
    DaemonSettings,
    limits_section,
    load_daemon_settings,
    resolve_home,
)
from tuxai.store.jobs import Store
from tuxai.telemetry.collector import Telemetry, TelemetryConfig
from tuxai.telemetry.detection import DetectionConfig
from tuxai.telemetry.samplers import sampler_for

STALE_PERIODS = 3  # /v1/health answers 503 after this many periods without a good tick
log = logging.getLogger("tuxai.daemon")


def _telemetry(settings: DaemonSettings, config: DaemonConfig) -> Telemetry:
    inventory = config.inventory
    simulated = inventory.source.startswith("simulated")
    declared = load_simulated_processes(settings.inventory) if simulated and settings.inventory else ()
    sampler = sampler_for(list(inventory.gpus), simulated=simulated, processes=declared)
    detection = DetectionConfig(idle_after_s=settings.idle_after_s, hung_after_s=settings.hung_after_s)
    return Telemetry(
        sampler,
        TelemetryConfig(
            period_s=settings.telemetry_period_s,
            watts_per_cpu=settings.watts_per_cpu,
            grid_g_per_kwh=settings.grid_intensity,
            pue=settings.pue,
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


def _check_tcp(address: str, insecure: bool) -> None:
    """Refuse a non-loopback ``--tcp`` unless ``--insecure-tcp``: the bearer token would cross the network in clear."""
    host, _ = parse_address(address, "--tcp")
    if not insecure and not is_loopback(host):
        raise UsageError(
            f"--tcp {address} is not a loopback address: the API and its bearer token would travel in plain HTTP",
            hint="listen on 127.0.0.1 and put a TLS proxy in front, or pass --insecure-tcp",
        )


def _tcp_socket(address: str, flag: str = "--tcp") -> socket.socket:
    return listen_tcp(*parse_address(address, flag), flag)


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


def build_config(settings: DaemonSettings, home: Path, config_file: Path | None = None) -> DaemonConfig:
    """What the daemon of ``home`` manages, from its settings (reads the inventory and the policy file)
    and the config file's ``limits:`` (``config_file``, else the default one)."""
    home = home.expanduser().resolve()
    scheduler = SchedulerConfig()
    if settings.scheduler_config is not None:
        path = settings.scheduler_config
        scheduler = parse_scheduler_config(path.read_text(), str(path))
    disabled = CgroupSupport(0, problem="disabled with --cgroups off")
    return DaemonConfig(
        home=home,
        inventory=_inventory(settings.inventory),
        scheduler=scheduler,
        quotas=load_quotas(limits_section(config_file=config_file)),
        cgroups=disabled if settings.cgroups == "off" else detect_cgroups(prepare=True),
        online_cpus=tuple(sorted(os.sched_getaffinity(0))),
        cgroup_every_job=settings.cgroups == "all",
        job_pids_max=settings.job_pids_max,
        keep_finished_s=settings.keep_finished_s,
        allow_foreign_gpu_use=settings.allow_foreign_gpu_use,
        notify_socket=str(home / "notify.sock"),
    )


class _Sidecar(uvicorn.Server):
    """A second server in the daemon's event loop (Prometheus); the API server owns the signals."""

    leader: uvicorn.Server | None = None  # the API server, whose stop is this one's

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave SIGINT and SIGTERM to the API server, which stops this one."""
        yield

    async def on_tick(self, counter: int) -> bool:
        """Stop at the API server's own tick, its shutdown beside the API's (not after it: ~0.2 s)."""
        return (self.leader is not None and self.leader.should_exit) or await super().on_tick(counter)


def _uvicorn(app: object, http: object = "httptools") -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        http=http,  # type: ignore[arg-type]
        proxy_headers=False,
        access_log=False,
        log_config=None,  # uvicorn's records go through our handler (tuxai.logs): no colour, one format
        log_level="warning",
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=5,
    )


async def _serve_all(
    api: uvicorn.Server, sockets: list[socket.socket], metrics: tuple[_Sidecar, socket.socket] | None
) -> None:
    if metrics:
        metrics[0].leader = api
    task = asyncio.create_task(metrics[0].serve(sockets=[metrics[1]])) if metrics else None
    try:
        await api.serve(sockets=sockets)
    finally:
        if metrics is not None and task is not None:
            metrics[0].should_exit = True
            await task


def serve(settings: DaemonSettings, home: Path, config_file: Path | None = None) -> int:
    """Run the daemon of ``home`` until SIGINT, SIGTERM or ``POST /v1/shutdown``.

    Raises:
        UsageError: a bad flag, or a home that is not safe to use (``api.home.check_home``).
        DaemonError: another daemon runs for this home.
    """
    if settings.tcp:
        _check_tcp(settings.tcp, settings.insecure_tcp)
    home = check_home(home)
    with _home_file():
        lock = lock_home(home)
    try:
        return _run(settings, home, config_file)
    finally:
        os.close(lock)  # last: `tuxai down` waits for it, and the store is closed by now


def _run(settings: DaemonSettings, home: Path, config_file: Path | None) -> int:
    config = build_config(settings, home, config_file)
    with _home_file():
        prepare_store(home / "tuxai.db")
    store = Store(home / "tuxai.db")
    local = None if settings.slurm else LocalExecutor(home, config.cgroups)
    daemon = Daemon(config, store, local) if local else slurm_daemon(config, store, settings.slurm_python)  # --slurm
    daemon = ray_daemon(config, store, settings.ray, home / "ray-nodes") if settings.ray else daemon  # up --ray
    executor = daemon.executor  # the backend (executor.attempt: the seam)
    signal.signal(signal.SIGHUP, lambda *_: reload_quotas(daemon, config_file))  # systemctl reload: limits
    stop = threading.Event()
    notify = notify_listener(home / "notify.sock", daemon, stop)
    daemon.reconcile(time.time())
    telemetry = TelemetryLoop(daemon, _telemetry(settings, config), policy=settings.on_hung)
    try:  # a first look before the first tick: GPUs busy outside tuxai are known before anything starts
        telemetry.step(time.time())
    except Exception as exc:  # noqa: BLE001 (telemetry must never keep the daemon from starting)
        telemetry.health.failed(exc)
    tick = LoopHealth("tick", stale_after_s=STALE_PERIODS * settings.tick_period_s)
    loop = threading.Thread(
        target=run_loop, args=(daemon, stop, settings.tick_period_s), kwargs={"health": tick}, name="tick", daemon=True
    )
    loop.start()
    daemon.wake.set()
    threading.Thread(target=telemetry.run, args=(stop,), name="telemetry", daemon=True).start()

    with _home_file():
        sockets = [unix_socket(home / "tuxai.sock", socket.SOCK_STREAM, 0o666 if os.getuid() == 0 else 0o600)]
    sockets[0].listen(512)
    token = ""
    if settings.tcp:
        tcp = _tcp_socket(settings.tcp)
        sockets.append(tcp)
        host, port = tcp.getsockname()[:2]
        with _home_file():
            token = _token(home)
            write_private(home / "tcp.addr", f"{host}:{port}\n")
    metrics_address = ""
    metrics = _metrics_socket(settings.metrics_addr or DEFAULT_METRICS_ADDR, explicit=bool(settings.metrics_addr))
    sidecar = None
    if metrics is not None:
        host, port = metrics.getsockname()[:2]
        metrics_address = f"{host}:{port}"
        with _home_file():
            write_private(home / "metrics.addr", metrics_address + "\n")
        sidecar = (_Sidecar(_uvicorn(MetricsApp(telemetry.metrics), PeerCredProtocol)), metrics)  # heads capped
    app = create_app(daemon, Auth(os.getuid(), token), telemetry, metrics_address, private_queue=settings.private_queue)
    app.state.tick = tick
    server = uvicorn.Server(_uvicorn(app, PeerCredProtocol))
    app.state.shutdown = lambda: setattr(server, "should_exit", True)
    app.state.stopping = lambda: server.should_exit  # the dashboard's event streams end with the server
    log.info(
        "tuxai daemon %d up: %s%s, %d GPUs (%s), cgroups %s",
        os.getpid(),
        home / "tuxai.sock",
        f", tcp {settings.tcp}" if settings.tcp else "",
        len(config.inventory.gpus),
        config.inventory.source,
        f"v{config.cgroups.version}" if config.cgroups.version else f"off: {config.cgroups.problem}",
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


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are a ``UsageError`` (one line, exit 2), not its usage text."""

    def error(self, message: str) -> typing.NoReturn:
        """Raise instead of printing the usage and exiting."""
        raise UsageError(message, hint="see python -m tuxai.api.server --help")


def parser() -> argparse.ArgumentParser:
    """The daemon's flags, one per field of ``DaemonSettings`` (``tuxai up`` passes the same on).

    Unset flags are None: the variable, the config file or the default decides (``load_daemon_settings``).
    """
    p = _Parser(prog="python -m tuxai.api.server", description="The tuxai daemon.", argument_default=None)
    p.add_argument("--home", help=HOME_HELP, metavar="DIR")
    p.add_argument("--config", help=CONFIG_HELP, metavar="FILE")
    for field in declared_fields(DaemonSettings):
        if field.kind == "flag":
            p.add_argument(field.flag, dest=field.key, action="store_const", const=True, help=field.help())
        else:
            p.add_argument(field.flag, dest=field.key, help=field.help(), metavar=field.metavar)
        for alias, value in field.rules.aliases:
            p.add_argument(alias, dest=field.key, action="store_const", const=value, help=f"{field.flag} {value}")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; a bad flag, variable or config value, or a ``TuxaiError``, is one line on stderr and exit 2."""
    try:
        args = vars(parser().parse_args(argv))
        home, config = args.pop("home"), args.pop("config")
        config_file = Path(config) if config else None
        settings = load_daemon_settings(args, config_file=config_file)
        configure_logging(settings.log_level)
        log.debug("settings: %s", settings)
        return serve(settings, resolve_home(Path(home) if home else None), config_file)
    except TuxaiError as exc:
        # The one line a person (or `tuxai up --detach`, reading the log's last line) reads: not a log record.
        print(f"error: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    status = main()
    gc.freeze()  # exit's last collection would walk every object the imports made (~0.7 s), all about to go
    sys.exit(status)
