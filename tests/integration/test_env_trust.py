"""An environment cache others may write (a node's ``TUXAI_ENV_CACHE`` made 1777): what another user
planted there is never taken by root or anybody else (U2). Files and directories are planted as
``nobody``'s (uid 65534, by ``chown``: only their owner and mode decide), the env built for real by uv
from a wheel made on the spot."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from tests.wheels import make_wheel
from tuxai.envs import READY, env_key, read_pip_settings, user_cache
from tuxai.envs.node import keep_source, node_env
from tuxai.envs.pip_kept import kept_pip_settings

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the files are planted as nobody's (chown)")


def _nobodys(*paths: Path) -> None:
    for path in paths:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


def _shared(tmp_path: Path) -> Path:
    shared = tmp_path / "u-shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


@needs_root
def test_U2_root_rank_never_reuses_an_env_another_user_planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "root-cache"))
    shared = _shared(tmp_path)
    wheel = make_wheel(tmp_path, "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    text = f"{wheel}\n"
    theirs = "nobody-s-package\n"  # nobody's text under root's text's hash, nobody's env under its key
    planted = shared / env_key("requirements", theirs.encode(), sys.executable, read_pip_settings())
    (planted / "bin").mkdir(parents=True)
    (planted / "bin" / "python").write_text("#!/bin/sh\necho nobody was here\n")
    (planted / READY).write_text("x\n")
    (shared / "sources").mkdir()
    lock = shared / "sources" / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.txt"
    lock.write_text(theirs)
    _nobodys(planted, planted / "bin", planted / "bin" / "python", planted / READY, shared / "sources", lock)

    env, built = node_env(text, shared, "n1")
    assert env != planted and built and os.stat(env).st_uid == 0
    assert env.parent == shared / "0" and own_only(shared / "0")  # root's own part of the shared cache
    assert node_env(text, shared, "n1") == (env, False)  # root's own build is reused

    (shared / "0").rename(shared / "old")
    (shared / "0").mkdir()
    _nobodys(shared / "0")  # nobody took root's part first: root builds in its own cache instead
    assert user_cache(shared, os.environ) == tmp_path / "root-cache" / "tuxai" / "envs"


def own_only(path: Path) -> bool:
    """A directory of root's that nobody else may write."""
    st = os.lstat(path)
    return st.st_uid == 0 and not st.st_mode & 0o022


def test_U2_a_planted_lockfile_under_my_hash_is_not_built(tmp_path: Path) -> None:
    text = "tiny==1.0\n"
    sources = tmp_path / "sources"
    sources.mkdir()
    name = f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.txt"
    (sources / name).write_text("evil==6.6.6\n")  # another text under my text's hash
    assert keep_source(text, tmp_path).read_text() == text

    victim = tmp_path / "victim.txt"
    victim.write_text("evil==6.6.6\n")
    (sources / name).unlink()
    (sources / name).symlink_to(victim)  # a link under my hash: neither read nor written through
    path = keep_source(text, tmp_path)
    assert not path.is_symlink() and path.read_text() == text and victim.read_text() == "evil==6.6.6\n"


@needs_root
def test_U2_pip_settings_kept_by_another_user_are_not_taken_nor_written_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/mine")
    shared = _shared(tmp_path)
    assert kept_pip_settings(shared).find_links == ("/opt/mine",)
    (kept,) = shared.glob("pip-*.json")
    data = json.loads(kept.read_text())
    kept.write_text(json.dumps({**data, "find_links": ["/opt/nobodys"]}))
    _nobodys(kept)  # nobody's settings under the name root's are kept by
    assert kept_pip_settings(shared).find_links == ("/opt/mine",)

    kept.unlink()
    victim = tmp_path / "victim"
    victim.write_text("root's\n")
    temp = shared / f".{kept.name}.{os.getpid()}"  # the name the temp file had: a link there is not followed
    temp.symlink_to(victim)
    _nobodys(temp)
    assert kept_pip_settings(shared).find_links == ("/opt/mine",)
    assert victim.read_text() == "root's\n" and os.stat(kept, follow_symlinks=False).st_uid == 0
