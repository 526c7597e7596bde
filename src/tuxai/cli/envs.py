"""``tuxai env``: create, ls (size, last use), rm, gc; and the python of an environment (``doctor --env``).

Environments live in the daemon's ``<home>/envs`` when the user may write there, else in their
own cache (``tuxai.envs.user_cache``); both are listed, and a user removes only what they may.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tuxai.cli.common import DebugOption, HomeOption, JsonOption, daemon_home, guard

if TYPE_CHECKING:
    from tuxai.envs.cache import CachedEnv

env_app = typer.Typer(help="Job environments: build once, name, list, remove.", no_args_is_help=True)


def _caches(home: Path | None) -> tuple[Path, list[Path]]:
    """This user's cache (where they build), and every cache they read: theirs, then the daemon's."""
    from tuxai.envs import user_cache

    shared = daemon_home(home) / "envs"
    cache = user_cache(shared, os.environ)
    return cache, [cache, *([shared] if shared != cache else [])]


def env_python(spec: str, home: Path | None) -> str:
    """The interpreter of the environment ``spec`` (a name, a venv, a built requirements file), said
    on stderr (``doctor --env``: the report is of that interpreter's frameworks).

    Raises:
        UsageError: no such environment, or not built yet.
    """
    import sys

    from tuxai.envs import find_env

    python = find_env(spec, _caches(home)[1]) / "bin" / "python"
    print(f"frameworks of the environment {spec}: {python}", file=sys.stderr)
    return str(python)


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return "never"
    seconds = max(0.0, now - at)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit} ago"
    return "just now"


def _uses(home: Path | None, required: bool) -> tuple[set[Path], dict[Path, float]]:
    """What the daemon's store says of the caller's jobs (root's: everyone's): the environments of the
    active ones, and each environment's last submit (the marker a user cannot write in a shared
    cache misses those: root's ``env gc`` still sees its users' jobs).

    Raises:
        DaemonError: no daemon answers and ``required`` (``env gc`` removes nothing it cannot check).
    """
    from tuxai.cli.jobs import ACTIVE, client
    from tuxai.errors import DaemonError
    from tuxai.model.wire import Job

    try:
        with client(home) as api:
            jobs = [j for j in api.jobs() if isinstance(j, Job) and j.spec.env_path]
    except DaemonError:
        if required:
            raise
        return set(), {}
    last: dict[Path, float] = {}
    for job in jobs:
        env = Path(job.spec.env_path).resolve()
        last[env] = max(last.get(env, 0.0), job.submitted_at)
    return {Path(j.spec.env_path).resolve() for j in jobs if j.state in ACTIVE}, last


@env_app.command("create")
def env_create(
    name: Annotated[str, typer.Argument(help="The name jobs will use: --env NAME.")],
    source: Annotated[str, typer.Argument(help="requirements.txt, a project directory, or a venv.")],
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Build (or reuse) the environment of SOURCE and call it NAME."""
    from tuxai.envs import ensure_env, name_env

    def action() -> int:
        cache, caches = _caches(home)
        target = ensure_env(source, cache, shared=caches[1:])
        print(f"environment {name}: {name_env(name, target, cache)} → {target}")
        return 0

    raise typer.Exit(guard(action, debug))


@env_app.command("ls")
def env_list(as_json: JsonOption = False, home: HomeOption = None, debug: DebugOption = False) -> None:
    """The built environments: names, size on disk, last use by a job, what they were built from."""
    from tuxai.cli.jobs import printable
    from tuxai.envs.cache import cached_envs, used_since
    from tuxai.model.units import format_bytes

    def action() -> int:
        envs = used_since([env for cache in _caches(home)[1] for env in cached_envs(cache)], _uses(home, False)[1])
        if as_json:
            print(json.dumps([_as_json(env) for env in envs], indent=2))
            return 0
        now = time.time()
        rows = [("NAME", "SIZE", "LAST USED", "BUILT FROM", "PATH")]
        rows += [
            (",".join(e.names) or "-", format_bytes(e.size_bytes), _ago(e.last_used_at, now), e.source, str(e.path))
            for e in envs
        ]
        shown = [[printable(value) for value in row] for row in rows]
        widths = [max(len(row[i]) for row in shown) for i in range(4)]
        for row in shown if envs else []:
            print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=False)) + "  " + row[4])
        if not envs:
            print("no environments built yet (tuxai submit --env FILE or tuxai env create NAME FILE)")
        return 0

    raise typer.Exit(guard(action, debug))


def _as_json(env: CachedEnv) -> dict[str, object]:
    return {
        "path": str(env.path),
        "source": env.source,
        "names": ",".join(env.names),
        "size_bytes": env.size_bytes,
        "built_at": env.built_at,
        "last_used_at": env.last_used_at,
    }


@env_app.command("rm")
def env_remove(
    env: Annotated[str, typer.Argument(help="A name (tuxai env create) or a path that `tuxai env ls` shows.")],
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Remove an environment and its names (refused while an active job of yours uses it)."""
    from tuxai.envs.cache import env_of, remove_env
    from tuxai.errors import UsageError

    def action() -> int:
        found, cache = env_of(env, _caches(home)[1])
        if found.path in _uses(home, required=False)[0]:
            raise UsageError(f"environment {env} is used by an active job", hint="remove it once the job has ended")
        remove_env(found, cache)
        print(f"removed {found.path}" + (f" (named {', '.join(found.names)})" if found.names else ""))
        return 0

    raise typer.Exit(guard(action, debug))


@env_app.command("gc")
def env_collect(
    unused_days: Annotated[
        float, typer.Option("--unused-days", help="Remove what no job used for this many days.", metavar="DAYS")
    ] = 30.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")] = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Remove your environments that no job used for --unused-days days (never one an active job uses)."""
    from tuxai.envs.cache import cached_envs, remove_env, unused, used_since
    from tuxai.errors import UsageError
    from tuxai.model.units import format_bytes

    def action() -> int:
        if unused_days < 0:
            raise UsageError(f"--unused-days must be 0 or more, got {unused_days:g}", hint="e.g. --unused-days 30")
        cache = _caches(home)[0]  # only the user's own: the daemon's shared one is root's to tidy
        in_use, last = _uses(home, required=True)
        now = time.time()
        gone = list(unused(used_since(cached_envs(cache), last), now, unused_days, in_use))
        for env in gone:
            if not dry_run:
                remove_env(env, cache)
            names = f" ({', '.join(env.names)})" if env.names else ""
            idle = _ago(env.idle_since, now).removesuffix(" ago")
            verb = "would remove" if dry_run else "removed"
            print(f"{verb} {env.path}{names}: {format_bytes(env.size_bytes)}, unused {idle}")
        freed = format_bytes(sum(e.size_bytes for e in gone))
        print(f"{len(gone)} environment(s), {freed}" + (" would be freed" if dry_run else " freed"))
        return 0

    raise typer.Exit(guard(action, debug))
