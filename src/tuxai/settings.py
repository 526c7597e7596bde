"""The one frozen ``Settings`` object, built once and passed down.

Precedence: flag > ``TUXAI_*`` environment variable > config file > default.
Nothing here reads the environment at import time: ``load_settings`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from tuxai.errors import ConfigError

ENV_PREFIX = "TUXAI_"


def default_data_dir(env: Mapping[str, str], uid: int) -> Path:
    """Where the store lives: ``/var/lib/tuxai`` for root, else under XDG."""
    if uid == 0:
        return Path("/var/lib/tuxai")
    xdg = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local/share")
    return Path(xdg) / "tuxai"


def default_config_file(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/tuxai/config.yaml``."""
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(xdg) / "tuxai" / "config.yaml"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, in one place."""

    data_dir: Path
    inventory: Path | None = None
    probe_timeout_s: float = 10.0
    framework_timeout_s: float = 15.0
    python: str = ""


_PATH_FIELDS = {"data_dir", "inventory"}
_FLOAT_FIELDS = {"probe_timeout_s", "framework_timeout_s"}


def _coerce(name: str, value: object, source: str) -> object:
    if value is None:
        return None
    if name in _PATH_FIELDS:
        return Path(str(value)).expanduser()
    if name in _FLOAT_FIELDS:
        try:
            number = float(str(value))
        except ValueError:
            raise ConfigError(
                f"{source}: {name} must be a number of seconds, got {value!r}",
                hint=f"set {name} to e.g. 10",
            ) from None
        if number <= 0:
            raise ConfigError(f"{source}: {name} must be positive, got {value!r}", hint="use e.g. 10")
        return number
    return str(value)


def load_settings(
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    uid: int | None = None,
) -> Settings:
    """Build ``Settings`` from flags, ``TUXAI_*`` variables, a config file and defaults.

    Raises:
        ConfigError: a value cannot be read, or the config file is malformed.
    """
    env = dict(os.environ) if env is None else dict(env)
    uid = os.getuid() if uid is None else uid
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}

    explicit = config_file or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    path = explicit or default_config_file(env)
    if explicit is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist", hint="check the path in TUXAI_CONFIG")
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}", hint="fix or remove it") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping of setting: value", hint="fix or remove it")
        unknown = sorted(set(loaded) - names)
        if unknown:
            raise ConfigError(
                f"config file {path} has unknown settings: {', '.join(unknown)}",
                hint=f"known settings: {', '.join(sorted(names))}",
            )
        for key, value in loaded.items():
            values[key] = _coerce(key, value, str(path))

    for name in names:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw:
            values[name] = _coerce(name, raw, ENV_PREFIX + name.upper())

    for name, value in (flags or {}).items():
        if name not in names:
            raise ConfigError(f"unknown setting {name!r}", hint=f"known settings: {', '.join(sorted(names))}")
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")

    settings = Settings(data_dir=values.pop("data_dir", None) or default_data_dir(env, uid))
    return replace(settings, **values)
