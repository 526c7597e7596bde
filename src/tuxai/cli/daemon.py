"""The daemon's own commands: ``up`` (the daemon's command line, started and waited for),
``down``, and ``status``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tuxai.api.client import Client
from tuxai.api.home import check_home, daemon_pid, open_private, read_private, wait_stopped
from tuxai.cli.daemon_notes import started_lines
from tuxai.cli.jobs import client, home_dir
from tuxai.cli.queue import limits_rows
from tuxai.errors import DaemonError, UsageError
from tuxai.model.mapping import declared_fields
from tuxai.model.wire import to_json
from tuxai.settings import DaemonSettings, load_daemon_settings

# ---- up / down ------------------------------------------------------------------------------


def daemon_argv(home: Path, config: Path | None, given: Mapping[str, object]) -> list[str]:
    """The daemon's command line: its home, and the settings given as flags (by key: ``tick_period``).

    Raises:
        ConfigError: a bad value in a flag, a ``TUXAI_*`` variable or the config file, which the
            daemon would read the same way: said here in one line rather than in its log.
    """
    load_daemon_settings(given, config_file=config)
    argv = [sys.executable, "-m", "tuxai.api.server", "--home", str(home)]
    if config is not None:
        argv += ["--config", str(config.expanduser().resolve())]
    for field in declared_fields(DaemonSettings):
        value = given.get(field.key)
        if value is True:
            argv.append(field.flag)
        elif value is not None and value is not False:
            text = str(Path(str(value)).expanduser().resolve()) if field.kind == "path" else str(value)
            argv += [field.flag, text]
    return argv


def run_up(argv: list[str], home: Path, detach: bool, timeout_s: float = 30.0) -> int:
    """Foreground: become the daemon. ``--detach``: start it in the background and wait until it answers.

    Raises:
        UsageError: the home is not safe to use (another user's, a link: ``api.home.check_home``).
        DaemonError: one already runs, or the new one did not start (its last log line says why).
    """
    pid = None
    with contextlib.suppress(DaemonError), Client.for_home(home, timeout_s=2) as probe:
        pid = probe.health().pid
    if pid is not None:
        raise UsageError(f"a tuxai daemon already runs for {home} (pid {pid})", hint="`tuxai down` stops it")
    if not detach:
        os.execv(argv[0], argv)
    home = check_home(home)  # before daemon.log: never write through a link somebody planted
    log_path = home / "daemon.log"
    try:
        log = open_private(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except OSError as exc:
        raise UsageError(
            f"cannot write {log_path}: {exc.strerror}", hint="it must be your own file, not a link"
        ) from None
    start = os.fstat(log).st_size  # what this daemon logs comes after
    with os.fdopen(log, "ab") as handle:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    with Client.for_home(home, timeout_s=2) as probe:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                lines = read_private(log_path).strip().splitlines()
                last = lines[-1] if lines else f"exit status {process.returncode}"
                raise DaemonError(f"the daemon did not start: {last.removeprefix('error: ')}", hint=f"see {log_path}")
            with contextlib.suppress(DaemonError):
                health = probe.health()
                since = read_private(log_path).encode()[start:].decode(errors="replace")
                print("\n".join(started_lines(health, home_dir(None), log_path, since)))  # cli/daemon_notes.py
                return 0
            time.sleep(0.05)
    raise DaemonError(f"the daemon did not answer within {timeout_s:g} s", hint=f"see {log_path}")


def run_down(home: Path, timeout_s: float = 15.0) -> int:
    """Ask the daemon to stop and return once it has exited, its store closed (running jobs go on);
    with none running, say so (exit 0, as ``systemctl stop`` of a stopped unit).

    Raises:
        DaemonError: it does not answer yet holds its lock, or it is still there after ``timeout_s``.
        PermissionDenied: neither root nor the daemon's owner.
    """
    pid = daemon_pid(home)  # from daemon.lock: a daemon whose loop is stuck answers no health
    try:
        with Client.for_home(home, timeout_s=5) as api:
            api.shutdown()
    except DaemonError as exc:
        try:
            wait_stopped(home, None, 0)  # its lock free: none runs
        except DaemonError:
            raise exc from None  # one runs but does not answer
        print(f"no tuxai daemon runs for {home}: nothing to stop")
        return 0
    wait_stopped(home, pid, timeout_s)
    print(f"tuxai daemon {pid or ''} stopped, its store closed (running jobs go on; `tuxai up` adopts them)")
    return 0


def run_status(home: Path | None, as_json: bool) -> int:
    """``tuxai status``: the daemon (pid, home, machine, cgroups, telemetry, Prometheus) and the
    caller's limits beside their use (root: every account's)."""
    with client(home) as api:
        health = api.health()
        limits = [] if as_json else limits_rows(api.limits())  # root: every account
    if as_json:
        print(json.dumps(to_json(health), indent=2))
        return 0
    rows = [
        ("daemon", f"pid {health.pid}, tuxai {health.version}"),
        ("asked", api.describe()),  # which daemon, and why that one (yours, or the system's)
        ("home", health.home),
        ("machine", f"{health.gpus} GPUs, {health.cpus} CPUs ({health.inventory})"),
        ("cgroups", f"v{health.cgroups}" if health.cgroups else f"off: {health.cgroups_problem}"),
        ("telemetry", f"GPUs by {health.sampler}, CPU energy by {health.cpu_energy}"),
        *([("", health.cpu_energy_problem)] if health.cpu_energy_problem else []),
        ("prometheus", f"http://{health.metrics}/metrics" if health.metrics else "not on TCP"),
        *limits,
    ]
    for key, value in rows:
        print(f"{key:>10}  {value}")
    return 0
