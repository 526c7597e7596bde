"""Job environments: a virtual environment per requirements file or project, built once with ``uv``.

    --env requirements.txt   → <cache>/<hash of the file, the Python, the pip settings>/
    --env path/to/project    → the same, hashed over pyproject.toml (the project is installed)
    --env path/to/venv       → used as it is (a directory with bin/python)
    --env NAME               → an environment made with `tuxai env create NAME SOURCE`

uv does not read pip's configuration; ``pip_settings`` reads what ``pip config list``
shows (find-links, index URLs, constraints, certificates) and ``uv_flags`` hands it to uv,
so that wheels on local disk (this machine's PyTorch CPU build) win over a download.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tuxai.envs.trust import READY as READY  # callers import these two from here
from tuxai.envs.trust import trusted_env
from tuxai.envs.trust import user_cache as user_cache
from tuxai.errors import UsageError


@dataclass(frozen=True)
class PipSettings:
    """The pip settings that decide where packages come from."""

    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    cert: str = ""
    origins: dict[str, str] = field(default_factory=dict)  # setting → where pip found it


def parse_pip_config(text: str) -> PipSettings:
    """``pip config list`` output → ``PipSettings``; later lines (env over files) win.

    >>> parse_pip_config("global.find-links='/opt/wheels'").find_links
    ('/opt/wheels',)
    """
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or "." not in key:
            continue
        scope, _, name = key.rpartition(".")
        if scope not in (":env:", "global", "install", "user", "site"):
            continue
        values[name] = raw.strip().strip("'\"")
        origins[name] = "PIP_* environment" if scope == ":env:" else f"pip config [{scope}]"

    def words(name: str) -> tuple[str, ...]:
        return tuple(values.get(name, "").split())

    return PipSettings(
        index_url=values.get("index-url", ""),
        extra_index_urls=words("extra-index-url"),
        find_links=words("find-links"),
        constraints=words("constraint"),
        cert=values.get("cert", ""),
        origins=origins,
    )


def read_pip_settings(python: str = sys.executable) -> PipSettings:
    """Run ``python -m pip config list`` (pip reads its files and PIP_* variables); empty if no pip."""
    try:
        done = subprocess.run(
            [python, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return PipSettings()
    return parse_pip_config(done.stdout) if done.returncode == 0 else PipSettings()


def uv_flags(settings: PipSettings) -> list[str]:
    """The ``uv pip install`` flags that carry ``settings`` over.

    >>> uv_flags(PipSettings(find_links=("/opt/wheels",), constraints=("/etc/c.txt",)))
    ['--find-links', '/opt/wheels', '--constraints', '/etc/c.txt']
    """
    flags: list[str] = []
    if settings.index_url:
        flags += ["--index-url", settings.index_url]
    for url in settings.extra_index_urls:
        flags += ["--extra-index-url", url]
    for place in settings.find_links:
        flags += ["--find-links", place]
    for path in settings.constraints:
        if Path(path).is_file() or "://" in path:
            flags += ["--constraints", path]
    if settings.extra_index_urls or settings.find_links:
        # pip takes the best version from every source; uv stops at the first index unless told.
        flags += ["--index-strategy", "unsafe-best-match"]
    return flags


def describe(settings: PipSettings) -> list[str]:
    """One line per setting, for ``tuxai doctor``."""
    lines = []
    for name, value in (
        ("index-url", settings.index_url),
        ("extra-index-url", " ".join(settings.extra_index_urls)),
        ("find-links", " ".join(settings.find_links)),
        ("constraint", " ".join(settings.constraints)),
        ("cert", settings.cert),
    ):
        if value:
            lines.append(f"{name} = {value} (from {settings.origins.get(name, 'pip')})")
    return lines


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _source(spec: str, caches: Sequence[Path]) -> tuple[str, Path]:
    path = Path(spec).expanduser()
    if NAME.match(spec) and not path.exists():
        for cache in caches:
            named = cache / "named" / spec
            if named.is_symlink() and os.lstat(named).st_uid in (os.geteuid(), 0) and trusted_env(named.resolve()):
                return "venv", named.resolve()
        raise UsageError(
            f"--env {spec}: no such file, directory or named environment",
            hint=f"create it with `tuxai env create {spec} requirements.txt`, or pass a path",
        )
    if path.is_file():
        return "requirements", path.resolve()
    if (path / "bin" / "python").exists():
        return "venv", path.resolve()
    if (path / "pyproject.toml").is_file():
        return "project", path.resolve()
    raise UsageError(
        f"--env {spec}: not a requirements file, a project directory with pyproject.toml, or a virtual environment",
        hint="pass e.g. --env requirements.txt",
    )


def env_key(kind: str, content: bytes, python: str, settings: PipSettings) -> str:
    """The cache key: what is installed, into which Python, from where."""
    digest = hashlib.sha256()
    for part in (kind.encode(), content, python.encode(), json.dumps(uv_flags(settings)).encode()):
        digest.update(part + b"\0")
    return digest.hexdigest()[:20]


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        raise UsageError("uv is not installed", hint="pip install uv (it comes with tuxai)")
    return found


def ensure_env(
    spec: str,
    cache: Path,
    python: str = sys.executable,
    settings: PipSettings | None = None,
    output: Callable[[str], None] | None = None,
    shared: Sequence[Path] = (),
) -> Path:
    """The virtual environment for ``spec``, built now in ``cache`` unless it or one of the ``shared``
    caches (read only: the daemon's, for a user who cannot write there) has it.

    Concurrent builders of the same env wait for each other (a lock per key). uv's output
    (its progress) goes to this process's stderr.

    Raises:
        UsageError: ``spec`` is none of the three kinds, uv failed (its last lines say why), or the
            cache cannot be written (one line, the path and why).
    """
    caches = [cache, *(c for c in shared if c != cache)]
    kind, path = _source(spec, caches)
    if kind == "venv":
        return path
    settings = read_pip_settings(python) if settings is None else settings
    try:
        key = _key(kind, path, python, settings)
        built = next((c / key for c in caches if trusted_env(c / key)), None)
        return built or _build(kind, path, cache / key, python, settings, output)
    except OSError as exc:
        raise UsageError(
            f"cannot build the environment in {cache}: {exc.strerror or exc} ({exc.filename or path})",
            hint="set XDG_CACHE_HOME to a directory of yours, or pass --env an existing virtual environment",
        ) from None


def _key(kind: str, path: Path, python: str, settings: PipSettings) -> str:
    content = path.read_bytes() if kind == "requirements" else (path / "pyproject.toml").read_bytes()
    return env_key(kind, content + str(path).encode() if kind == "project" else content, python, settings)


def find_env(spec: str, caches: Sequence[Path], python: str = sys.executable) -> Path:
    """The environment ``spec`` names, built already: a name, a venv, or the requirements file or
    project of one built in ``caches``; never builds.

    Raises:
        UsageError: none of those, or not built yet (the hint says how to build it).
    """
    kind, path = _source(spec, caches)
    if kind == "venv":
        return path
    try:
        key = _key(kind, path, python, read_pip_settings(python))
    except OSError as exc:
        raise UsageError(f"--env {spec}: cannot read {exc.filename or path}: {exc.strerror}", hint="check it") from None
    built = next((c / key for c in caches if trusted_env(c / key)), None)
    if built is None:
        raise UsageError(f"the environment of {spec} is not built yet", hint=f"tuxai env create NAME {spec}")
    return built


@contextlib.contextmanager
def key_lock(cache: Path, key: str) -> Iterator[None]:
    """Hold ``<cache>/<key>.lock`` (builders and removers of one key wait for each other); the file
    is gone once released, whether the work failed or not, so no lock is ever left behind.

    The holder removes the file while it holds it; a waiter that then gets the lock of the removed
    file sees it is no longer the one at the path, and takes the new one.
    """
    path = cache / f"{key}.lock"
    while True:
        lock = open(path, "a")  # noqa: SIM115 - closed below, after the unlink
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                    break
        except BaseException:
            lock.close()
            raise
        lock.close()  # the holder before us removed it: lock the one at the path now
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        lock.close()


def _build(
    kind: str, path: Path, target: Path, python: str, settings: PipSettings, output: Callable[[str], None] | None
) -> Path:
    cache, key = target.parent, target.name
    cache.mkdir(parents=True, exist_ok=True)
    with key_lock(cache, key):
        if (target / READY).exists():
            return target
        if target.exists():
            shutil.rmtree(target)  # a build that died half-way
        say = output or (lambda text: print(text, file=sys.stderr, flush=True))
        say(f"building the job environment {target} from {path} (once; later jobs reuse it)")
        uv = _uv()
        steps = [
            [uv, "venv", "--quiet", "--python", python, str(target)],
            [uv, "pip", "install", "--python", str(target / "bin" / "python"), *uv_flags(settings)]
            + (["-r", str(path)] if kind == "requirements" else [str(path)]),
        ]
        env = {**os.environ, "UV_NO_CONFIG": "1"}
        if settings.cert:
            env.setdefault("SSL_CERT_FILE", settings.cert)
        for step in steps:
            # uv's progress and errors go straight to our stderr: the person sees them as they come.
            done = subprocess.run(step, env=env, stdout=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                with contextlib.suppress(OSError):
                    shutil.rmtree(target)
                raise UsageError(
                    f"building the environment from {path} failed (uv exit {done.returncode}; its message is above)",
                    hint="fix the requirements, or try them with `uv pip install -r FILE` in a fresh venv",
                )
        (target / READY).write_text(str(path) + "\n")
    return target


def name_env(name: str, target: Path, cache: Path) -> Path:
    """Point ``<cache>/named/NAME`` at a built environment (replacing an older one atomically).

    Raises:
        UsageError: not a usable name, or ``cache`` cannot be written.
    """
    if not NAME.match(name):
        raise UsageError(f"{name!r} is not an environment name", hint="use letters, digits, '.', '-' and '_'")
    named = cache / "named"
    tmp = named / f".{name}.{os.getpid()}"
    try:
        named.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, named / name)
    except OSError as exc:
        raise UsageError(
            f"cannot name the environment in {named}: {exc.strerror}", hint="check its permissions"
        ) from None
    return named / name
