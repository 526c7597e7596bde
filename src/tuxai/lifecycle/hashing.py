"""Content hashes (sha256, never mtimes): a step's code, its environment file, an artifact directory,
and the cache key that joins them with the step's job fields and its inputs.

What a step's code is (docs/lifecycle.md, "What is hashed"):
  1. the files and directories its ``code:`` names, relative to its workdir, if given;
  2. else, in a git work tree, the workdir's files git knows (tracked, and untracked but not ignored);
  3. else the command's words that name files in the workdir (``python train.py`` → ``train.py``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tuxai.errors import UsageError
from tuxai.model.jobfile import spec_from_dict, spec_to_dict

_LOCKFILES = ("uv.lock", "poetry.lock", "requirements.lock", "pylock.toml")


def file_digest(path: Path) -> str:
    """sha256 of a file's content, in hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def tree_hash(root: Path, relative: Iterable[str]) -> str:
    """One hash of the files ``relative`` under ``root``: their names and contents (a link: its target).

    ``tree_hash(d, ["a.txt"])`` changes when a.txt's content or name changes, not its mtime.
    """
    digest = hashlib.sha256()
    for name in sorted(set(relative)):
        path = root / name
        if path.is_symlink():
            entry = "link:" + str(path.readlink())
        elif path.is_file():
            entry = file_digest(path)
        else:
            continue  # gone since it was listed (a tracked file deleted)
        digest.update(f"{name}\0{entry}\n".encode())
    return digest.hexdigest()


def files_under(root: Path) -> list[str]:
    """Every file and link under ``root``, relative, sorted (directories themselves carry no content)."""
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_symlink() or p.is_file())


def dir_hash(root: Path) -> str:
    """An artifact directory's content hash (``tree_hash`` of everything under it)."""
    return tree_hash(root, files_under(root))


def git_files(workdir: Path) -> list[str] | None:
    """The files git knows under ``workdir`` (tracked, and untracked but not ignored), relative to it;
    None when ``workdir`` is not in a git work tree (``git ls-files -z --cached --others --exclude-standard``)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(workdir), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [name for name in done.stdout.decode(errors="surrogateescape").split("\0") if name]


def code_files(code: tuple[str, ...], command: Iterable[str], workdir: Path, where: str) -> tuple[str, list[str]]:
    """Which files are a step's code (see the module's three rules): (the rule used, the files).

    Raises:
        UsageError: a path of ``code:`` that does not exist, named with ``where`` (the step).
    """
    if code:
        found: list[str] = []
        for name in code:
            path = workdir / name
            if not path.exists():
                raise UsageError(f"{where}: code {name} does not exist in {workdir}", hint="fix the step's code:")
            if path.is_dir():
                found.extend(str(path.relative_to(workdir) / f) for f in files_under(path))
            else:
                found.append(name)
        return "code", found
    tracked = git_files(workdir)
    if tracked is not None:
        return "git", tracked
    return "command", [w for w in command if not w.startswith("-") and "\0" not in w and (workdir / w).is_file()]


def env_hash(env: str, workdir: Path) -> str:
    """The hash of a step's environment: its requirements file, or a project's pyproject.toml, with
    the lockfile beside it (uv.lock, poetry.lock …); a named environment by its name; none: ``""``."""
    if not env:
        return ""
    path = workdir / env
    if path.is_file():
        names = [path.name, *(n for n in _LOCKFILES if (path.parent / n).is_file())]
        return tree_hash(path.parent, names)
    if path.is_dir():
        names = [n for n in ("pyproject.toml", "requirements.txt", "pyvenv.cfg", *_LOCKFILES) if (path / n).is_file()]
        return tree_hash(path, names)
    return hashlib.sha256(f"named:{env}".encode()).hexdigest()


def job_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A step's job fields in their one stored form, without what does not change its result (its
    name, its workdir's path: the code hash stands for the workdir's content)."""
    canonical = spec_to_dict(spec_from_dict(dict(fields), origin="step", slurm_time=True))
    return {k: v for k, v in canonical.items() if k not in ("name", "workdir")}


def step_key(fields: Mapping[str, Any], code: str, env: str, inputs: Mapping[str, str]) -> str:
    """The cache key of a step: its job fields, code hash, environment hash and inputs' content hashes."""
    body = {"fields": job_fields(fields), "code": code, "env": env, "inputs": dict(sorted(inputs.items()))}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
