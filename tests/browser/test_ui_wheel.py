"""The built wheel carries the dashboard's chart library and our own static files; the tree commits none
of the built files. A wheel built from the sdist (which carries ``web/``, never the built files) builds
the library itself in the build hook (``hatch_build.py``: ``npm ci``, ``node build.mjs``), and without
npm that build stops with one line saying so (issue 18 gap 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.daemon_helpers import REPO

pytestmark = pytest.mark.browser
DIST = REPO / "src" / "tuxai" / "ui" / "static" / "dist"


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist built from the tree once (its archive); it carries ``web/``, never what npm made."""
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out)], cwd=REPO,
                   check=True, timeout=120, capture_output=True)  # fmt: skip
    (archive,) = out.glob("tuxai-*.tar.gz")
    with tarfile.open(archive) as unpacked:
        names = unpacked.getnames()
    assert not [n for n in names if "/static/dist/" in n or "node_modules" in n]  # built files: never in the sdist
    assert any(n.endswith("/web/package-lock.json") for n in names)
    return archive


def _unpack(archive: Path, into: Path) -> Path:
    """The sdist unpacked under ``into``: its project folder."""
    with tarfile.open(archive) as unpacked:
        unpacked.extractall(into / "unpacked", filter="data")
    (project,) = (into / "unpacked").iterdir()
    return project


def _wheel(project: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(project)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_E18_3_a_wheel_built_from_the_sdist_builds_and_holds_the_chart_library(sdist: Path, tmp_path: Path) -> None:
    built = DIST / "uplot.js"
    assert built.is_file(), "run `make ui-assets` (make test-ui does)"
    answer = _wheel(_unpack(sdist, tmp_path), tmp_path / "wheel")
    assert answer.returncode == 0, answer.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("tuxai-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("tuxai/ui/static/dist/uplot.js") == built.read_bytes()  # the same pinned uPlot
    assert {"tuxai/ui/static/dist/uplot.css", "tuxai/ui/static/dist/uplot.LICENSE"} <= names
    assert {"tuxai/ui/static/charts.js", "tuxai/ui/static/ui.js", "tuxai/ui/static/ui.css"} <= names
    tracked = subprocess.run(["git", "ls-files", str(DIST)], cwd=REPO, capture_output=True, text=True, check=True)
    assert tracked.stdout == ""  # built at packaging time, never a vendored copy in the tree


def test_E18_3_without_npm_the_wheel_is_refused_in_one_line(sdist: Path, tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "no-npm-here"), "HOME": str(tmp_path), "LANG": os.environ.get("LANG", "C.UTF-8")}
    build = [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "wheel")]  # pip's backend
    answer = subprocess.run(build, cwd=_unpack(sdist, tmp_path), capture_output=True, text=True, timeout=120, env=env)
    assert answer.returncode != 0 and not list((tmp_path / "wheel").glob("*.whl"))
    said = [line.strip() for line in (answer.stdout + answer.stderr).splitlines() if line.strip().startswith("tuxai:")]
    assert said == [
        "tuxai: the wheel needs the dashboard's chart library, built from npm, and npm is not on PATH"
        " (install it: apt install npm; or build from a tree where `make ui-assets` ran)"
    ]
