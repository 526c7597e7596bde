"""Environment builds leave no lock behind, whether they fail or not; builders of one key wait for
each other and build once (real uv builds of a wheel made on the spot)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.wheels import make_wheel
from tuxai.envs import READY, ensure_env
from tuxai.errors import UsageError


def test_a_failed_build_leaves_no_lock_and_the_next_build_goes_straight_on(tmp_path: Path) -> None:
    wheel = tmp_path / "tiny-1.0-py3-none-any.whl"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{wheel}\n")  # not there yet: the first build fails
    cache = tmp_path / "cache"
    said: list[str] = []
    with pytest.raises(UsageError, match=r"building the environment from .* failed"):
        ensure_env(str(requirements), cache, output=said.append)
    assert sorted(p.name for p in cache.iterdir()) == []  # no lock file, no half-built environment

    make_wheel(tmp_path, "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    started = time.monotonic()
    built = ensure_env(str(requirements), cache, output=said.append)  # the same key: nothing to wait for
    assert time.monotonic() - started < 20
    assert (built / READY).is_file() and sorted(p.name for p in cache.iterdir()) == [built.name]
    assert len(said) == 2  # "building …" once for each try


def test_builders_of_one_key_wait_for_each_other_and_build_once(tmp_path: Path) -> None:
    make_wheel(tmp_path, "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{tmp_path / 'tiny-1.0-py3-none-any.whl'}\n")
    cache = tmp_path / "cache"
    said: list[str] = []
    results: list[Path] = []

    def build() -> None:
        results.append(ensure_env(str(requirements), cache, output=said.append))

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4 and len(set(results)) == 1 and len(said) == 1
    assert [p.name for p in cache.iterdir()] == [results[0].name]  # the lock went with the last holder
