"""Serving for daily use, for real: `tuxai serve` of the example repository (examples/models) and
`tuxai infer` as subprocesses; the listing, the start that fails, swaps in the log, 404s in /metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from tests.integration.test_serving import Server
from tests.serving_models import mlp_onnx

REPO_ROOT = Path(__file__).resolve().parents[2]
TUXAI = [sys.executable, "-m", "tuxai"]


def build_examples(target: Path) -> Path:
    """examples/models/build.py, run as a user runs it."""
    done = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "models" / "build.py"), str(target)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example repository and a model that cannot load, served once for the module."""
    root = build_examples(tmp_path_factory.mktemp("examples") / "repo")
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"not an onnx file")
    running = Server(root, root.parent)
    yield running
    assert running.stop() == 0


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value (0 when the series is absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.split()[-1])
    return 0.0


def test_404s_are_counted_as_404_in_bounded_series(server: Server) -> None:
    def scan(tag: str, count: int) -> None:
        for i in range(count):
            assert server.http.get(f"/v2/no/such/path/{tag}{i}").status_code == 404
            assert server.http.get(f"/v2/models/ghost{tag}{i}").status_code == 404
            assert server.http.post(f"/v2/models/ghost{tag}{i}/infer", json={"inputs": []}).status_code == 404

    scan("a", 1)
    server.http.get("/metrics")
    before = server.http.get("/metrics").text
    scan("b", 50)
    after = server.http.get("/metrics").text
    for route, family in (("unknown", "http_requests"), ("metadata", "http_requests"), ("infer", "http_requests")):
        labels = {"route": route, "code": "404"}
        assert metric(after, f"tuxai_serve_{family}_total", **labels) - metric(before, f"tuxai_serve_{family}_total",
                                                                                  **labels) == 50, route  # fmt: skip
    assert metric(after, "tuxai_serve_requests_total", model="", version="", code="404") == 51
    assert "ghost" not in after and "no/such" not in after  # E8: made-up names add no series
    assert len(after.splitlines()) == len(before.splitlines())  # 150 more 404s, not one more series


def test_models_listing_beside_the_repository_index(server: Server) -> None:
    listed = server.http.get("/v2/models")
    assert listed.status_code == 200
    models = {m["name"]: m for m in listed.json()["models"]}
    assert sorted(models) == ["add_sub", "broken", "classify"]
    assert models["add_sub"]["state"] == "READY"
    assert models["add_sub"]["versions"] == [{"version": "1", "state": "READY", "reason": ""}]
    assert models["broken"]["state"] == "UNAVAILABLE"
    assert "ONNX Runtime cannot load" in models["broken"]["versions"][0]["reason"]
    # tritonclient is unaffected by the listing (its calls go to the paths it knows)
    client = triton.InferenceServerClient(server.address)
    assert client.is_server_ready() is False  # broken never loads: the server is not ready, as Triton says
    assert client.is_model_ready("classify") and not client.is_model_ready("broken")
    x = np.array([[1, 0, 0, 0], [0, 0, 3, 0]], dtype=np.float32)
    tensor = triton.InferInput("x", [2, 4], "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    assert client.infer("classify", [tensor]).as_numpy("label").tolist() == [0, 2]
    client.close()


def test_every_model_failing_exits_non_zero_saying_why(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / "repo" / name / "1").mkdir(parents=True)
        (tmp_path / "repo" / name / "1" / "model.onnx").write_bytes(b"junk")
    argv = [*TUXAI, "serve", str(tmp_path / "repo"), "--port", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]]
    assert "no model could be loaded" in lines[-1] and "--allow-empty" in lines[-1]
    for name in ("one", "two"):
        said = [line for line in lines if f"model {name} version 1 failed to load" in line]
        assert len(said) == 1 and "ONNX Runtime cannot load" in said[0]
    assert done.stderr.count("Traceback (most recent call last)") == 2  # the loader's, once per model


def test_allow_empty_stays_up_and_loads_what_appears(tmp_path: Path) -> None:
    (tmp_path / "repo" / "one" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "one" / "1" / "model.onnx").write_bytes(b"junk")
    server = Server(tmp_path / "repo", tmp_path, "--allow-empty")
    try:
        assert server.http.get("/v2/models").json()["models"][0]["state"] == "UNAVAILABLE"
        mlp_onnx(tmp_path / "staging" / "model.onnx", sizes=(4, 2))
        shutil.copytree(tmp_path / "staging", tmp_path / "repo" / "one" / ".2")
        (tmp_path / "repo" / "one" / ".2").rename(tmp_path / "repo" / "one" / "2")
        deadline = time.monotonic() + 20
        while server.http.get("/v2/models/one/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.http.get("/v2/models/one/ready").status_code == 200
    finally:
        assert server.stop() == 0


def test_version_swap_is_logged_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    mlp_onnx(root / "mlp" / "1" / "model.onnx", sizes=(4, 2))
    server = Server(root, tmp_path)
    try:
        mlp_onnx(tmp_path / "staging" / "model.onnx", sizes=(4, 2), seed=2)
        shutil.copytree(tmp_path / "staging", root / "mlp" / ".2")
        (root / "mlp" / ".2").rename(root / "mlp" / "2")
        deadline = time.monotonic() + 20
        while "model mlp: version 1 → 2" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert server.stop() == 0
    swaps = [line for line in server.log.read_text().splitlines() if "model mlp: version" in line]
    assert len(swaps) == 1 and re.search(r"model mlp: version 1 → 2 \(.*2/ appeared", swaps[0]), swaps


def test_a_new_version_that_fails_leaves_the_old_one_serving_and_is_tried_once(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    mlp_onnx(root / "mlp" / "1" / "model.onnx", sizes=(4, 2))
    server = Server(root, tmp_path)
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    try:
        (tmp_path / ".2").mkdir()
        (tmp_path / ".2" / "model.onnx").write_bytes(b"junk")
        (tmp_path / ".2").rename(root / "mlp" / "2")
        deadline = time.monotonic() + 20
        while "version 2 failed to load" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # three more passes of the watch
        answer = server.http.post("/v2/models/mlp/infer", json=body)
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        states = {v["version"]: v["state"] for v in server.http.get("/v2/models").json()["models"][0]["versions"]}
        assert states == {"1": "READY", "2": "UNAVAILABLE"}
        mlp_onnx(tmp_path / "good.onnx", sizes=(4, 2), seed=3)
        (tmp_path / "good.onnx").rename(root / "mlp" / "2" / "model.onnx")  # fixed in place: tried again
        while server.http.post("/v2/models/mlp/infer", json=body).json()["model_version"] != "2":
            assert time.monotonic() < deadline + 20
            time.sleep(0.1)
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    assert log.count("model mlp version 2 failed to load") == 1, log
    assert "version 2 could not load; version 1 keeps serving" in log and "model mlp: version 1 → 2 (watch" in log
