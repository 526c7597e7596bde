"""The environment cache kept tidy: what each environment weighs, when a job last used it, and
removing one (by name or path) or every one unused for N days.

    <cache>/<key>/                 an environment (``.tuxai-ready`` once built, ``.tuxai-used`` its last use)
    <cache>/<key>.lock             held while it is built or removed (gone once done)
    <cache>/named/NAME -> <key>    the names of ``tuxai env create``
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tuxai.envs import READY, find_env, key_lock
from tuxai.errors import UsageError

USED = ".tuxai-used"


@dataclass(frozen=True)
class CachedEnv:
    """One built environment of a cache."""

    path: Path
    source: str  # what it was built from
    names: tuple[str, ...]  # ``tuxai env create`` names pointing at it
    size_bytes: int  # on disk, each file once (uv hard-links from its own cache)
    built_at: float
    last_used_at: float | None  # the last submit that used it; None: never

    @property
    def idle_since(self) -> float:
        """Since when nobody used it: its last use, else when it was built."""
        return self.last_used_at if self.last_used_at is not None else self.built_at


def record_use(env: Path, now: float | None = None) -> None:
    """Note that a job uses ``env`` now (``env ls``'s LAST USED, ``env gc``); nothing for an environment
    outside a cache (a venv of the user's own) or one this user may not write (the daemon's shared one).

    Only in an environment this user owns, and the marker opened without following a link: root's
    ``submit --env DIR`` of a user's directory must not create or touch a file the user names (R4).
    """
    with contextlib.suppress(OSError):
        if not (env / READY).is_file() or os.stat(env).st_uid != os.geteuid():
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(env / USED, flags, 0o644)
        try:
            os.utime(fd, None if now is None else (now, now))
        finally:
            os.close(fd)


def _size(root: Path) -> int:
    """Bytes on disk under ``root``, each inode once, links not followed (``du -s``)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            with contextlib.suppress(OSError):
                stat = os.lstat(os.path.join(folder, name))
                if (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_blocks * 512
    return total


def _names(cache: Path) -> dict[Path, list[str]]:
    names: dict[Path, list[str]] = {}
    named = cache / "named"
    for link in sorted(named.iterdir()) if named.is_dir() else []:
        if link.is_symlink() and not link.name.startswith("."):
            names.setdefault(link.resolve(), []).append(link.name)
    return names


def cached_envs(cache: Path) -> list[CachedEnv]:
    """The built environments of ``cache``, oldest build first."""
    names = _names(cache)
    found = []
    for ready in cache.glob(f"*/{READY}"):
        env = ready.parent.resolve()
        with contextlib.suppress(OSError):
            used = env / USED
            found.append(
                CachedEnv(
                    path=env,
                    source=ready.read_text().strip(),
                    names=tuple(names.get(env, [])),
                    size_bytes=_size(env),
                    built_at=ready.stat().st_mtime,
                    last_used_at=used.stat().st_mtime if used.exists() else None,
                )
            )
    return sorted(found, key=lambda e: e.built_at)


def remove_env(env: CachedEnv, cache: Path) -> None:
    """Remove ``env`` and every name of it from ``cache``: its ready mark first (no one picks up a
    half-removed environment), under its build lock (no build of the same key meanwhile).

    Raises:
        UsageError: it cannot be removed (not this user's to remove: one line, the path and why).
    """
    try:
        for name in env.names:
            with contextlib.suppress(FileNotFoundError):
                (cache / "named" / name).unlink()
        with key_lock(cache, env.path.name):
            with contextlib.suppress(FileNotFoundError):
                (env.path / READY).unlink()
            shutil.rmtree(env.path)
    except OSError as exc:
        raise UsageError(
            f"cannot remove the environment {env.path}: {exc.strerror or exc}",
            hint="an environment of the daemon's shared cache is root's to remove",
        ) from None


def env_of(spec: str, caches: list[Path]) -> tuple[CachedEnv, Path]:
    """The cached environment ``spec`` names (a ``tuxai env create`` name or a path ``env ls`` shows),
    and the cache that holds it.

    Raises:
        UsageError: no such environment in these caches.
    """
    target = find_env(spec, caches)
    for cache in caches:
        for env in cached_envs(cache):
            if env.path == target:
                return env, cache
    raise UsageError(f"{spec} is not an environment tuxai built", hint="`tuxai env ls` lists them")


def used_since(envs: list[CachedEnv], submitted: Mapping[Path, float]) -> list[CachedEnv]:
    """``envs`` with their last use the later of their own mark and ``submitted`` (an environment's
    last job submit, as the daemon's store has it)."""
    return [
        dataclasses.replace(env, last_used_at=max(env.last_used_at or 0.0, submitted[env.path]))
        if env.path in submitted
        else env
        for env in envs
    ]


def unused(envs: list[CachedEnv], now: float, days: float, in_use: set[Path]) -> Iterator[CachedEnv]:
    """The environments nobody used for ``days`` days, but those an active job uses (``in_use``)."""
    for env in envs:
        if env.path not in in_use and now - env.idle_since >= days * 86400:
            yield env
