"""Security issue S9: ``submit --serve PATH``'s job command carries the path as an argument, never as shell text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuxai.cli.jobs import serve_command


def _run_with_stand_in_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Path) -> list[str]:
    """Run ``serve_command(target)`` for real through ``sh``, with a stand-in for Python that prints its argv."""
    stand_in = tmp_path / "py$(touch PYTHON_RAN)"
    stand_in.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    stand_in.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(stand_in))
    env = {**os.environ, "TUXAI_ENDPOINT_FILE": str(tmp_path / "endpoint")}
    done = subprocess.run(serve_command(target), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_S9_a_model_path_with_shell_syntax_is_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m$(touch PWNED)\"`touch PWNED2`'x"
    target.mkdir()
    argv = _run_with_stand_in_python(tmp_path, monkeypatch, target)
    assert argv == ["-m", "tuxai", "serve", str(target), "--port", "0", "--endpoint-file", str(tmp_path / "endpoint")]
    assert not {"PWNED", "PWNED2", "PYTHON_RAN"} & set(os.listdir(tmp_path))


def test_S9_a_registry_alias_goes_in_as_one_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = _run_with_stand_in_python(tmp_path, monkeypatch, Path("models:/served@champion"))
    assert argv[:4] == ["-m", "tuxai", "serve", "models:/served@champion"]
    assert "PYTHON_RAN" not in os.listdir(tmp_path)
