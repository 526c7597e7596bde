"""Issue 19, `tuxai image build / ls / rm` against real podman: the second build is a cache hit
and the same inputs give the same image ID, also when rebuilt from the cached layout."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.containers.conftest import FRAMEWORKS, TUXAI
from tuxai.images.build import download_wheels

pytestmark = pytest.mark.containers

UV_PROJECT = FRAMEWORKS / "uvlock"  # a project pinning six 1.17.0 and its uv.lock
BUILD = [*TUXAI, "image", "build", "--name", "tier-python", "--package", "python3-minimal", "--json"]


def _tuxai(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


def test_I19_same_inputs_are_a_cache_hit_with_the_same_image_id(python_image: str) -> None:
    again = json.loads(_tuxai(BUILD).stdout)
    assert again["reference"] == python_image and again["cache"] == "podman"
    listed = json.loads(_tuxai([*TUXAI, "image", "ls", "--json"]).stdout)
    assert [i["id"] for i in listed if i["reference"] == python_image] == [again["id"]]
    # podman loses the image: the layout cached outside the clone gives it back, with the same ID
    subprocess.run(["podman", "rmi", "--force", python_image], capture_output=True, check=True)
    rebuilt = json.loads(_tuxai(BUILD).stdout)
    assert (rebuilt["cache"], rebuilt["id"]) == ("layout", again["id"])


def test_I19_image_rm_of_an_unknown_image_is_one_line() -> None:
    done = _tuxai([*TUXAI, "image", "rm", "localhost/tuxai/never:0"])
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "tuxai image ls" in done.stderr


def test_I19_a_uv_lock_is_built_from_the_versions_it_pins(tmp_path: Path) -> None:
    wheels = download_wheels(UV_PROJECT / "uv.lock", tmp_path / "wheels")
    assert "six==1.17.0" in (wheels / "requirements.txt").read_text().splitlines()
    assert [p.name for p in wheels.glob("*.whl")] == ["six-1.17.0-py2.py3-none-any.whl"]
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "uv.lock").write_bytes((UV_PROJECT / "uv.lock").read_bytes())
    done = _tuxai([*TUXAI, "image", "build", "--requirements", str(tmp_path / "alone" / "uv.lock")])
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "no pyproject.toml" in done.stderr, done.stderr
