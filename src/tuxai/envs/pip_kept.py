"""pip's settings (``tuxai.envs.read_pip_settings``) kept on disk, so that a submit or a cluster node's
rank that reuses an environment does not wait for ``pip config list`` (0.6 s, more under load) to say what
it said before: kept under what pip reads them from (``PIP_*`` variables, each config file's size and time),
so a changed setting is read again. A kept file is read only when it is this user's (a folder others
may write cannot hand root someone's settings), and written through a fresh name (U2). Its name also
hashes tuxai's version and ``PipSettings``' field names, and it is read strictly (a field missing or one
too many: pip is asked again): a field added later never silently takes its default from an old file.
One folder per cache (``kept_for``), for a submit and a node alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import tuxai
from tuxai.envs import PipSettings, read_pip_settings
from tuxai.envs.trust import read_own, write_new

SOURCES = "sources"  # in a cache: the files kept there (a lockfile's text, pip's settings), not environments
_FIELDS = tuple(f.name for f in dataclasses.fields(PipSettings))


def pip_files(python: str, environ: Mapping[str, str]) -> list[str]:
    """The files ``pip config list`` reads for ``python`` (global, user, site, ``PIP_CONFIG_FILE``)."""
    home = Path(environ.get("HOME") or "/")
    dirs = (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
    user = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [
        *(f"{d}/pip/pip.conf" for d in dirs),
        "/etc/pip.conf",
        str(home / ".pip" / "pip.conf"),
        str(user / "pip" / "pip.conf"),
        str(Path(python).parent.parent / "pip.conf"),
        environ.get("PIP_CONFIG_FILE", ""),
    ]


def kept_pip_settings(folder: Path, python: str = sys.executable) -> PipSettings:
    """``tuxai.envs.read_pip_settings``, kept in ``folder`` under what it depends on (``PIP_*`` variables,
    each of pip's config files' size and time): a job that reuses an environment does not wait for pip
    (0.6 s) to say what it said before; a changed setting is read again."""
    marks = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("PIP_")]
    for name in pip_files(python, os.environ):
        with contextlib.suppress(OSError):
            stat = os.stat(name)
            marks.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    schema = [tuxai.__version__, *_FIELDS]  # a new field or version: not what an old file was kept under
    digest = hashlib.sha256("\0".join([python, *schema, *marks]).encode()).hexdigest()[:20]
    kept = folder / f"pip-{digest}.json"
    with contextlib.suppress(OSError, ValueError):
        settings = _strict(json.loads(read_own(kept) or b""))  # only a file of this user's, no link followed (U2)
        if settings is not None:
            return settings
    settings = read_pip_settings(python)
    with contextlib.suppress(OSError):
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_new(kept, json.dumps(dataclasses.asdict(settings)).encode())
    return settings


def kept_for(cache: Path, python: str = sys.executable) -> PipSettings:
    """``kept_pip_settings`` in the one folder a cache keeps them in (``<cache>/sources``), for a
    submit (``envs.submit``) and a cluster node (``envs.node``) alike."""
    return kept_pip_settings(cache / SOURCES, python)


def _strict(data: object) -> PipSettings | None:
    """``PipSettings`` from a kept file's JSON, or None unless it has exactly the dataclass's fields,
    each of the type it was written with (a string, a list of strings, a mapping of strings)."""
    if not isinstance(data, dict) or sorted(data) != sorted(_FIELDS):
        return None
    blank = dataclasses.asdict(PipSettings())
    values: dict[str, object] = {}
    for name, value in data.items():
        kind = type(blank[name])
        if kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
            values[name] = tuple(value)
        elif kind is dict and isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            values[name] = dict(value)
        elif kind is str and isinstance(value, str):
            values[name] = value
        else:
            return None
    return PipSettings(**values)  # type: ignore[arg-type]
