"""The built wheel carries the dashboard's chart library (built from npm by ``make ui-assets``, which
``make test-ui`` runs first) and our own static files; the tree commits none of the built files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.daemon_helpers import REPO

pytestmark = pytest.mark.browser
DIST = REPO / "src" / "tuxai" / "ui" / "static" / "dist"


def test_the_wheel_holds_the_built_chart_library(tmp_path: Path) -> None:
    built = DIST / "uplot.js"
    assert built.is_file(), "run `make ui-assets` (make test-ui does)"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
         str(REPO)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("tuxai-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("tuxai/ui/static/dist/uplot.js") == built.read_bytes()
    assert {"tuxai/ui/static/dist/uplot.css", "tuxai/ui/static/dist/uplot.LICENSE"} <= names
    assert {"tuxai/ui/static/charts.js", "tuxai/ui/static/ui.js", "tuxai/ui/static/ui.css"} <= names
    tracked = subprocess.run(["git", "ls-files", str(DIST)], cwd=REPO, capture_output=True, text=True, check=True)
    assert tracked.stdout == ""  # built at packaging time, never a vendored copy in the tree
