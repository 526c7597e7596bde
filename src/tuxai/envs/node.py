"""A job's environment on a cluster node: built from the lockfile's text, or reused (issue 15).

The environment travels as the text of ``--env``'s requirements file (``JobSpec.env_lock``, read by
``tuxai submit``), never as a zip of site-packages. On the node the shim runs this module as the job's
user (``executor.node_env``)::

    python -m tuxai.envs.node --cache CACHE --node ADDRESS --result-fd FD   < the lockfile's text

It keeps the text in the node's cache under its hash (``sources/<hash>.txt``), then builds the
environment there with ``tuxai.envs.ensure_env`` — the same content-addressed cache, key and lock as
on one box: concurrent ranks on one node build once — or reuses the one built before. Its progress
(``node ADDRESS: building …``, uv's own output) goes to stderr, the job's log; the environment's path
is written to ``FD``. A build that fails exits 2, uv's message last.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

from tuxai.envs import ensure_env, user_cache
from tuxai.envs.cache import record_use
from tuxai.envs.pip_kept import SOURCES, kept_for
from tuxai.envs.portable import check_portable
from tuxai.envs.trust import read_own, write_new
from tuxai.errors import UsageError


def lock_text(source: str) -> str:
    """The text of ``--env``'s requirements file (what a cluster node builds from); "" for a project
    directory, a virtual environment or a name, which travel as their path.

    Raises:
        UsageError: the file cannot be read, is not text, or names paths relative to it (``envs.portable``).
    """
    path = Path(source).expanduser()
    if not path.is_file():
        return ""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--env {source}: cannot read it: {exc}", hint="pass a requirements file (text)") from None
    check_portable(text, source)  # a node gets the text alone: a path relative to the file is wrong there
    return text


def keep_source(text: str, cache: Path) -> Path:
    """``text`` in ``<cache>/sources/<hash>.txt`` (written once, atomically): the file the env is built
    from. A file there already is taken only when it is this user's and holds ``text`` (U2)."""
    folder = cache / SOURCES
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.txt"
    if read_own(path) != text.encode():
        write_new(path, text.encode())
    return path


def node_env(text: str, shared: Path, node: str) -> tuple[Path, bool]:
    """The environment of lockfile ``text`` on this node: built in this user's part of ``shared`` (the
    node's cache, ``envs.trust.user_cache``) unless it is there, or root's is (only an environment of the
    caller's or root's is reused). Returns it and whether it was built.

    Raises:
        UsageError: uv failed (its output is on stderr), or no cache can be written.
    """
    cache = user_cache(shared, os.environ)
    try:
        source = keep_source(text, cache)
    except OSError as exc:
        raise UsageError(f"node {node}: cannot keep the lockfile in {cache}: {exc.strerror or exc}") from None
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)  # ensure_env says something only when it builds
        print(f"node {node}: {line}", flush=True)

    shared_caches = [c for c in (shared, shared / "0") if c != cache]  # root's builds, read only
    settings = kept_for(cache)
    built = ensure_env(str(source), cache, settings=settings, output=say, shared=shared_caches)
    return built, bool(said)


def main(argv: list[str]) -> int:
    """Build or reuse the environment of the lockfile on stdin; its path to ``--result-fd``. Exit 2: it failed."""
    parser = argparse.ArgumentParser(prog="python -m tuxai.envs.node")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--result-fd", type=int, required=True)
    args = parser.parse_args(argv)
    sys.stdout = sys.stderr  # one stream, in order, into the job's log
    try:
        env, built = node_env(sys.stdin.read(), Path(args.cache), args.node)
    except UsageError as exc:
        print(f"node {args.node}: {exc.message}", flush=True)
        return 2
    record_use(env)
    print(f"node {args.node}: {'built' if built else 'reusing'} the job environment {env}", flush=True)
    with os.fdopen(args.result_fd, "w") as result:
        result.write(str(env))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
