"""`tuxai serve` logs through `logging` as the daemon does: a time and a level on each line, a
model that fails to load with its traceback, `--log-level` (or TUXAI_LOG_LEVEL) to choose."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.serving_models import mlp_onnx

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    mlp_onnx(root / "mlp" / "1" / "model.onnx")
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"not an onnx file")
    return root


def serve_until_up(repo: Path, tmp_path: Path, *flags: str, **env: str) -> str:
    """Start `tuxai serve`, wait for its endpoint, stop it with SIGTERM: its output."""
    endpoint, log = tmp_path / "endpoint", tmp_path / "serve.log"
    argv = [sys.executable, "-m", "tuxai", "serve", str(repo), "--port", "0", "--endpoint-file", str(endpoint), *flags]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TUXAI_")} | env
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=environment)
    deadline = time.monotonic() + 120
    while not endpoint.exists():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()
    return log.read_text()


def test_serve_logs_with_time_and_level_and_a_traceback_for_a_broken_model(repo: Path, tmp_path: Path) -> None:
    text = serve_until_up(repo, tmp_path)
    assert re.search(rf"^{STAMP} INFO tuxai.serving: serving on http://127.0.0.1:\d+ ", text, re.MULTILINE), text
    assert re.search(rf"^{STAMP} ERROR tuxai.serving: model broken version 1 failed to load: ", text, re.MULTILINE)
    assert "Traceback (most recent call last)" in text  # the loader's failure, where it happened
    assert re.search(rf"^{STAMP} INFO tuxai.serving: drained and stopped \(SIGTERM\)$", text, re.MULTILINE)
    assert "\x1b" not in text


def test_log_level_from_the_flag_or_the_variable(repo: Path, tmp_path: Path) -> None:
    quiet = serve_until_up(repo, tmp_path, "--log-level", "error")
    assert "serving on" not in quiet and "model broken version 1 failed to load" in quiet
    (tmp_path / "endpoint").unlink()
    assert "serving on" not in serve_until_up(repo, tmp_path, TUXAI_LOG_LEVEL="warning")


def test_a_bad_log_level_is_one_line(repo: Path) -> None:
    argv = [sys.executable, "-m", "tuxai", "serve", str(repo), "--port", "0", "--log-level", "loud"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: --log-level must be one of debug, info, warning, error, got 'loud'")
