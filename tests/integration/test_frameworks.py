"""Framework probes in real child processes: real torch and onnxruntime, and broken imports."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from tuxai.hardware.frameworks import FRAMEWORKS, probe_framework, probe_frameworks


def test_real_frameworks_installed_here() -> None:
    found = {f.name: f for f in probe_frameworks(timeout_s=60)}
    assert set(found) == set(FRAMEWORKS)
    torch = found["torch"]
    assert torch.installed and torch.error is None
    assert torch.version is not None and torch.version.startswith("2.13.0")
    assert torch.build_cuda is None and torch.gpu_support is False and torch.devices == ()
    onnx = found["onnxruntime"]
    assert onnx.installed and onnx.error is None and onnx.version
    assert onnx.gpu_support is False
    tensorflow = found["tensorflow"]  # installed by [dev] for the serving tests
    assert tensorflow.installed and tensorflow.error is None and tensorflow.version == "2.21.0"
    assert tensorflow.gpu_support is False and tensorflow.devices == ()
    assert found["jax"].installed is False  # not installed by [dev]


def _interpreter_with(tmp_path: Path, module: str, body: str) -> str:
    """A `python` wrapper whose path holds a fake, broken framework package."""
    package = tmp_path / "site" / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(body)
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{tmp_path / "site"}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return str(wrapper)


def test_crashing_import_is_reported_not_fatal(tmp_path: Path) -> None:
    python = _interpreter_with(tmp_path, "jax", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    result = probe_framework("jax", python, timeout_s=30)
    assert result.installed and result.error is not None
    assert "killed by signal 11" in result.error


def test_failing_import_reports_its_last_error_line(tmp_path: Path) -> None:
    body = "raise ImportError('libcudart.so.12: cannot open shared object file')\n"
    python = _interpreter_with(tmp_path, "tensorflow", body)
    result = probe_framework("tensorflow", python, timeout_s=30)
    assert result.error is not None and "libcudart.so.12" in result.error and "exit status 1" in result.error


def test_hanging_import_times_out(tmp_path: Path) -> None:
    python = _interpreter_with(tmp_path, "jax", "import time\ntime.sleep(60)\n")
    result = probe_framework("jax", python, timeout_s=1.5)
    assert result.error is not None and "did not finish within 2 s" in result.error
    assert result.probe_s is not None and result.probe_s < 10


def test_all_probes_with_another_interpreter(tmp_path: Path) -> None:
    python = _interpreter_with(tmp_path, "jax", "raise RuntimeError('no backend')\n")
    found = {f.name: f for f in probe_frameworks(python, timeout_s=60)}
    assert found["jax"].installed and "no backend" in (found["jax"].error or "")
    assert found["torch"].version is not None  # still found through the wrapper
