"""Every setting of tuxai, declared once; where the home is; how values are found.

Two frozen dataclasses declare the settings (name, type, default, help, unit, rules):
``Settings`` for the commands that probe this machine (``tuxai doctor``), ``DaemonSettings``
for the daemon. From that one declaration come the daemon's flags (``python -m
tuxai.api.server`` and ``tuxai up``), the variables and the config file's keys:

    field tick_period_s (a duration)  →  --tick-period 5s  /  TUXAI_TICK_PERIOD=5s  /  daemon: {tick_period: 5s}

Precedence: flag > ``TUXAI_*`` environment variable > config file > default. The config file
is ``--config FILE``, else ``$TUXAI_CONFIG``, else ``/etc/tuxai/config.yaml`` for root (the
system daemon) and ``$XDG_CONFIG_HOME/tuxai/config.yaml`` (``~/.config/tuxai/config.yaml``)
for anyone else; the daemon's settings sit under its ``daemon:`` key. A bad value names where
it came from (the flag, the variable, or the file and key) in one line.

The home (store, socket, jobs) is not a file setting, since every command must agree on it:
``--home``, else ``$TUXAI_HOME``, else ``$XDG_DATA_HOME/tuxai`` (``/var/lib/tuxai`` for root);
a command that talks to a daemon and was given neither tries the user's own home, then the
system daemon's (``candidate_homes``). Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from tuxai.errors import ConfigError
from tuxai.model.mapping import MappingReader, declared_fields, load_mapping, read_text_value, rules

ENV_PREFIX = "TUXAI_"
SYSTEM_HOME = Path("/var/lib/tuxai")
SYSTEM_CONFIG = Path("/etc/tuxai/config.yaml")
DAEMON_SECTION = "daemon"
LIMITS_SECTION = "limits"  # the daemon's quotas (tuxai.scheduler.quotas): a mapping, not flags
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_METRICS_ADDR = "127.0.0.1:9465"  # Prometheus, when --metrics-addr is not given (skipped if taken)
HOME_HELP = "The daemon's home: store, socket, jobs (env TUXAI_HOME; default: yours, else the system daemon's)."
CONFIG_HELP = "Config file (env TUXAI_CONFIG; default ~/.config/tuxai/config.yaml, /etc/tuxai/config.yaml for root)."
_HINT = "the settings are in docs/jobs.md and `tuxai up --help`"
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What the commands that look at this machine use (``tuxai doctor``): top-level keys of the file."""

    inventory: Path | None = field(
        default=None, metadata=rules("a simulated inventory (YAML) instead of this machine", metavar="FILE")
    )
    probe_timeout_s: float = field(
        default=10.0, metadata=rules("how long one probe (a tool) may run", duration=True, above=0)
    )
    framework_timeout_s: float = field(
        default=15.0, metadata=rules("how long importing a framework may take", duration=True, above=0)
    )
    python: str = field(
        default="", metadata=rules("the Python whose frameworks the doctor checks (default: this one)", metavar="PATH")
    )


@dataclass(frozen=True)
class DaemonSettings:
    """The daemon's settings: each a flag of ``tuxai up``, a ``TUXAI_*`` variable and a ``daemon:`` key."""

    inventory: Path | None = field(
        default=None,
        metadata=rules(
            "schedule a simulated inventory (YAML) instead of this machine", must_exist=True, metavar="FILE"
        ),
    )
    scheduler_config: Path | None = field(
        default=None, metadata=rules("policy weights (docs/scheduler.md)", must_exist=True, metavar="FILE")
    )
    ray: str = field(
        default="",
        metadata=rules("run jobs on the Ray cluster at HOST:PORT (or auto): tuxai schedules, Ray runs", metavar="ADDR"),
    )
    tcp: str = field(
        default="",
        metadata=rules("also listen on HOST:PORT (loopback), bearer token in <home>/token", metavar="HOST:PORT"),
    )
    insecure_tcp: bool = field(
        default=False, metadata=rules("let --tcp be a non-loopback address (the token travels in clear)")
    )
    private_queue: bool = field(default=False, metadata=rules("users see only their own jobs, not the queue"))
    allow_foreign_gpu_use: bool = field(
        default=False,
        metadata=rules("hand out GPUs that run processes tuxai did not start (default: kept off them)"),
    )
    metrics_addr: str = field(
        default="",
        metadata=rules(
            f"Prometheus endpoint HOST:PORT (default {DEFAULT_METRICS_ADDR}, skipped if taken; port 0: any)",
            metavar="HOST:PORT",
        ),
    )
    cgroups: str = field(
        default="limits",
        metadata=rules(
            "limits: a cgroup with limits for jobs that ask (--mem); all: for every job; off: none",
            choices=("limits", "all", "off"),
            aliases=(("--cgroup-every-job", "all"), ("--no-cgroups", "off")),
        ),
    )
    slurm: bool = field(
        default=False,
        metadata=rules("run jobs on the Slurm cluster whose sbatch, squeue, scancel this shell finds: Slurm schedules"),
    )
    slurm_python: str = field(
        default="",
        metadata=rules(
            "the Python that Slurm's nodes run tuxai's node runner with (default: the daemon's)", metavar="FILE"
        ),
    )
    job_pids_max: int = field(default=16384, metadata=rules("tasks (processes + threads) one job may have; 0: no cap"))
    keep_finished_s: float = field(
        default=365 * 86400.0,
        metadata=rules("keep ended jobs, their logs and checkpoints this long; 0: forever", duration=True),
    )
    tick_period_s: float = field(
        default=5.0,
        metadata=rules(
            "time between safety ticks; /v1/health answers 503 after 3 without a good one", duration=True, above=0
        ),
    )
    telemetry_period_s: float = field(
        default=1.0, metadata=rules("time between telemetry samples", duration=True, above=0)
    )
    idle_after_s: float = field(
        default=600.0, metadata=rules("idle GPU time before a job is flagged idle", duration=True, above=0)
    )
    hung_after_s: float = field(
        default=1800.0, metadata=rules("time without progress before a job is flagged hung", duration=True, above=0)
    )
    on_hung: str = field(
        default="none", metadata=rules("what to do with a hung job", choices=("none", "cancel", "requeue"))
    )
    grid_intensity: float = field(default=475.0, metadata=rules("grid carbon intensity, gCO2e/kWh", above=0))
    pue: float = field(default=1.0, metadata=rules("power usage effectiveness of the room, 1 or more", above=0))
    watts_per_cpu: float = field(
        default=10.0, metadata=rules("a CPU's power estimate where RAPL cannot measure it, W", above=0)
    )
    log_level: str = field(default="info", metadata=rules("the least severe log lines written", choices=LOG_LEVELS))


DAEMON_DEFAULTS = DaemonSettings()


# ---- the home --------------------------------------------------------------------------------


def system_home(env: Mapping[str, str]) -> Path:
    """The system daemon's home: ``$TUXAI_SYSTEM_HOME`` (for tests and unusual hosts), else ``/var/lib/tuxai``."""
    return Path(env["TUXAI_SYSTEM_HOME"]).expanduser() if env.get("TUXAI_SYSTEM_HOME") else SYSTEM_HOME


def default_data_dir(env: Mapping[str, str], uid: int) -> Path:
    """A user's own home: ``$XDG_DATA_HOME/tuxai`` (``~/.local/share/tuxai``); root's is the system home."""
    if uid == 0:
        return system_home(env)
    xdg = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local/share")
    return Path(xdg) / "tuxai"


def resolve_home(flag: Path | None = None, env: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    """The home a command or the daemon uses: ``--home``, else ``$TUXAI_HOME``, else the user's own."""
    env = os.environ if env is None else env
    if flag is not None:
        return Path(flag).expanduser()
    if env.get("TUXAI_HOME"):
        return Path(env["TUXAI_HOME"]).expanduser()
    return default_data_dir(env, os.getuid() if uid is None else uid)


def candidate_homes(
    flag: Path | None = None, env: Mapping[str, str] | None = None, uid: int | None = None
) -> tuple[Path, ...]:
    """Where a client looks for a daemon, in order: the home it was given; else its own, then the system's."""
    env = os.environ if env is None else env
    if flag is not None or env.get("TUXAI_HOME"):
        return (resolve_home(flag, env, uid),)
    own = resolve_home(None, env, uid)
    system = system_home(env)
    return (own,) if own == system else (own, system)


# ---- the config file and the precedence ------------------------------------------------------


def default_config_file(env: Mapping[str, str], uid: int | None = None) -> Path:
    """``/etc/tuxai/config.yaml`` for root, else ``$XDG_CONFIG_HOME/tuxai/config.yaml``."""
    if (os.getuid() if uid is None else uid) == 0:
        return SYSTEM_CONFIG
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(xdg) / "tuxai" / "config.yaml"


def _config_file(env: Mapping[str, str], uid: int, explicit: Path | None) -> MappingReader | None:
    """The config file's top mapping; None when there is none (an explicit one must exist)."""
    named = explicit or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    path = (named or default_config_file(env, uid)).expanduser()
    if named is not None and not path.is_file():
        where = "--config" if explicit is not None else "TUXAI_CONFIG"
        raise ConfigError(f"{where}: config file {path} does not exist", hint="check the path")
    if not path.is_file():
        return None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}", hint="check its permissions") from None
    top = load_mapping(text, str(path), ConfigError, hint=_HINT)
    top.reject_unknown([f.key for f in declared_fields(Settings)] + [DAEMON_SECTION, LIMITS_SECTION])
    return top


def _load(
    cls: type[T],
    section: str,
    flags: Mapping[str, object] | None,
    env: Mapping[str, str] | None,
    config_file: Path | None,
    uid: int | None,
) -> T:
    env = dict(os.environ) if env is None else dict(env)
    uid = os.getuid() if uid is None else uid
    declared = {f.key: f for f in declared_fields(cls)}
    values: dict[str, Any] = {}
    top = _config_file(env, uid, config_file)
    if top is not None:
        reader = top.child(section) if section else top  # the top level was checked with the file
        if section:
            reader.reject_unknown(declared)
        values.update({f.name: reader.read(f) for key, f in declared.items() if key in reader.data})
    for declared_field in declared.values():
        name = declared_field.env(ENV_PREFIX)
        if env.get(name):
            values[declared_field.name] = read_text_value(declared_field, env[name], name, ConfigError, _HINT)
    for key, value in (flags or {}).items():
        if key not in declared:
            raise ConfigError(f"unknown setting {key!r}", hint=f"known settings: {', '.join(sorted(declared))}")
        if value is not None:
            raw = str(value) if isinstance(value, Path) else value
            values[declared[key].name] = read_text_value(declared[key], raw, declared[key].flag, ConfigError, _HINT)
    return replace(cls(), **values)  # type: ignore[type-var]


def load_settings(
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    uid: int | None = None,
) -> Settings:
    """``Settings`` from flags (by key), ``TUXAI_*`` variables, the config file's top level and defaults.

    Raises:
        ConfigError: a value cannot be read, or the config file is malformed (named with its place).
    """
    return _load(Settings, "", flags, env, config_file, uid)


def limits_section(
    env: Mapping[str, str] | None = None, config_file: Path | None = None, uid: int | None = None
) -> MappingReader | None:
    """The config file's ``limits:`` mapping (the quotas, docs/jobs.md), None when the file has none.

    Raises:
        ConfigError: the file is malformed, or ``limits`` is not a mapping (named with its place).
    """
    env = dict(os.environ) if env is None else dict(env)
    top = _config_file(env, os.getuid() if uid is None else uid, config_file)
    if top is None or top.data.get(LIMITS_SECTION) is None:
        return None
    return top.child(LIMITS_SECTION)


def load_daemon_settings(
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    uid: int | None = None,
) -> DaemonSettings:
    """``DaemonSettings`` from flags (by key: ``tick_period``), variables, the file's ``daemon:`` and defaults.

    Raises:
        ConfigError: a value cannot be read, or the config file is malformed (named with its place).
    """
    return check_engine(_load(DaemonSettings, DAEMON_SECTION, flags, env, config_file, uid))


def check_engine(settings: DaemonSettings) -> DaemonSettings:
    """``settings`` when they name at most one engine (this machine, ``ray`` or ``slurm``) and only its flags.

    Raises:
        ConfigError: two engines (``--ray`` and ``--slurm``), or ``--slurm-python`` without ``--slurm``.
    """
    if settings.ray and settings.slurm:
        raise ConfigError(
            f"--ray {settings.ray} and --slurm name two engines: the daemon runs its jobs on one",
            hint="tuxai up --ray ADDRESS (Ray's cluster) or tuxai up --slurm (Slurm's), not both",
        )
    if settings.slurm_python and not settings.slurm:
        raise ConfigError("--slurm-python is for --slurm only: no Slurm engine was asked", hint="add --slurm")
    return settings
