"""Drift in the real server: a version with a ``drift-reference.json`` counts what it receives, and
``/metrics`` says after each window whether it drifted and which feature (tuxai.serving.drift_board)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from tests.integration.test_serving import Server
from tests.serving_models import mlp_onnx
from tuxai.serving.drift import Reference


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("repo")
    rng = np.random.default_rng(17)
    training = rng.normal(0, 1, (5000, 4))
    mlp_onnx(root / "watched" / "1" / "model.onnx", sizes=(4, 8, 3))
    reference = Reference.from_columns({f"x[{j}]": training[:, j] for j in range(4)})
    (root / "watched" / "1" / "drift-reference.json").write_text(json.dumps(reference.to_json()))
    (root / "watched" / "config.yaml").write_text("drift_window: 200\n")
    mlp_onnx(root / "plain" / "1" / "model.onnx", sizes=(4, 8, 3))
    mlp_onnx(root / "garbled" / "1" / "model.onnx", sizes=(4, 8, 3))
    (root / "garbled" / "1" / "drift-reference.json").write_text("{not json")
    running = Server(root, tmp_path_factory.mktemp("serve"))
    yield running
    assert running.stop() == 0


def _infer(server: Server, model: str, rows: np.ndarray) -> None:
    """``rows`` sent as requests of 50 (the model's batch is at most 64), each answered 200."""
    for part in np.split(rows, len(rows) // 50):
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(part.shape), "data": part.ravel().tolist()}]}
        answer = server.http.post(f"/v2/models/{model}/infer", json=body)
        assert answer.status_code == 200, answer.text


def _gauges(server: Server, family: str) -> dict[str, float]:
    """A family's samples on /metrics: labels text → value."""
    text = server.http.get("/metrics").text
    return {m[1]: float(m[2]) for m in re.finditer(rf"^{family}\{{(.*)\}} (\S+)$", text, re.MULTILINE)}


def test_held_out_rows_read_no_drift_then_a_shifted_feature_is_named(server: Server) -> None:
    rng = np.random.default_rng(99)
    assert _gauges(server, "tuxai_serve_drift") == {}  # no window closed yet: no verdict
    for _ in range(2):
        _infer(server, "watched", rng.normal(0, 1, (100, 4)).astype(np.float32))
    assert _gauges(server, "tuxai_serve_drift") == {'model="watched",version="1"': 0.0}
    psi = _gauges(server, "tuxai_serve_drift_psi")
    assert len(psi) == 4 and max(psi.values()) < 0.25, psi

    shifted = rng.normal(0, 1, (200, 4)).astype(np.float32)
    shifted[:, 2] += 1.5
    _infer(server, "watched", shifted)
    assert _gauges(server, "tuxai_serve_drift") == {'model="watched",version="1"': 1.0}
    psi = _gauges(server, "tuxai_serve_drift_psi")
    drifted = [k for k, v in psi.items() if v >= 0.25]
    assert drifted == ['model="watched",version="1",feature="x[2]"'], psi
    assert _gauges(server, "tuxai_serve_drift_windows_total") == {'model="watched",version="1"': 2.0}
    js = _gauges(server, "tuxai_serve_drift_js")
    assert 0 < js['model="watched",version="1",feature="x[2]"'] <= 1

    ran = server.log.with_name("on-drift.txt")
    command = [sys.executable, "-m", "tuxai", "drift", "watched", "--url", server.url,
               "--on-drift", f'echo "$TUXAI_DRIFT_VERSION $TUXAI_DRIFT_FEATURES" >> {ran}']  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "model watched version 1: drift on x[2] (last of 2 windows)"
    assert ran.read_text() == "1 x[2]\n"  # the --on-drift command ran once, told the version and feature


def test_no_reference_no_window_and_a_garbled_one_never_fails_a_request(server: Server) -> None:
    for model in ("plain", "garbled"):
        for _ in range(3):
            _infer(server, model, np.zeros((100, 4), dtype=np.float32))
    models = {k.split(",")[0] for k in _gauges(server, "tuxai_serve_drift_windows_total")}
    assert 'model="plain"' not in models and 'model="garbled"' not in models
    assert "drift-reference.json is not used" in server.log.read_text()
