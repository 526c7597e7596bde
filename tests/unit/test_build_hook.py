"""H1: the wheel's build hook installs the chart library with ``npm ci --ignore-scripts``: a package's
install scripts (a compromised dependency's) never run on the machine that builds the wheel. npm and node
are stand-ins on PATH that record how they were called."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _stand_in(bin_dir: Path, name: str, calls: Path) -> None:
    """A ``name`` on PATH that appends its arguments to ``calls`` and succeeds."""
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


def test_H1_the_wheel_build_installs_npm_packages_without_their_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("tuxai_hatch_build", REPO / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bin_dir, calls, root = tmp_path / "bin", tmp_path / "calls", tmp_path / "tree"
    bin_dir.mkdir()
    (root / "web").mkdir(parents=True)
    for name in ("npm", "node"):
        _stand_in(bin_dir, name, calls)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    hook = module.ChartAssetsHook(str(root), {}, None, None, str(tmp_path / "dist"), "wheel")  # root alone is read
    hook.initialize("standard", {})
    npm_line, node_line = calls.read_text().splitlines()
    assert npm_line.startswith("npm ci ") and "--ignore-scripts" in npm_line.split()
    assert node_line == "node build.mjs"
