"""`tuxai serve` for real: a server process on 127.0.0.1, tritonclient and raw HTTP against it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving_models import (
    TORCH_CONFIG,
    batch_size_onnx,
    control_token_path,
    mlp_onnx,
    saved_model,
    slow_onnx,
    torch_export,
)


class Server:
    """``python -m tuxai serve TARGET --port 0`` until stopped."""

    def __init__(self, target: Path, tmp: Path, *flags: str) -> None:
        self.endpoint_file = tmp / f"endpoint-{time.monotonic_ns()}"
        self.log = tmp / f"serve-{time.monotonic_ns()}.log"
        argv = [sys.executable, "-m", "tuxai", "serve", str(target), "--port", "0",
                "--endpoint-file", str(self.endpoint_file), *flags]  # fmt: skip
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self.endpoint_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log.read_text())
            time.sleep(0.05)
        self.url = self.endpoint_file.read_text().strip()
        self.http = httpx.Client(base_url=self.url, timeout=30)

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def stop(self) -> int:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    mlp_onnx(root / "mlp" / "1" / "model.onnx")
    batch_size_onnx(root / "batchsize" / "1" / "model.onnx")
    (root / "batchsize" / "config.yaml").write_text("max_batch_size: 64\n")
    torch_export(root / "affine" / "1")
    (root / "affine" / "config.yaml").write_text(TORCH_CONFIG)
    saved_model(root / "tfmodel" / "1")
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"not an onnx file")
    return root


@pytest.fixture(scope="module")
def server(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(repo, tmp_path_factory.mktemp("serve"))
    yield running
    assert running.stop() == 0


def test_tritonclient_onnx_binary_and_json(server: Server, repo: Path) -> None:
    import onnxruntime

    client = triton.InferenceServerClient(server.address)
    assert client.is_server_live() and client.is_model_ready("mlp")
    metadata = client.get_model_metadata("mlp")
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 256]}]
    x = np.random.default_rng(3).standard_normal((5, 256)).astype(np.float32)
    expected = onnxruntime.InferenceSession(str(repo / "mlp" / "1" / "model.onnx")).run(None, {"x": x})[0]
    for binary in (True, False):
        tensor = triton.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        result = client.infer("mlp", [tensor], outputs=[triton.InferRequestedOutput("y", binary_data=binary)])
        np.testing.assert_allclose(result.as_numpy("y"), expected, rtol=1e-5, atol=1e-5)
        assert result.get_response()["model_version"] == "1"
    client.close()


def test_tritonclient_torchscript_and_savedmodel(server: Server) -> None:
    client = triton.InferenceServerClient(server.address)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = triton.InferInput("x", [2, 3], "FP32")
    tensor.set_data_from_numpy(x)
    np.testing.assert_allclose(client.infer("affine", [tensor]).as_numpy("y"), x * 2 + 1)
    assert client.get_model_metadata("affine")["platform"] == "pytorch_libtorch"
    x4 = np.array([[1, 5, 2, 0], [9, 1, 1, 1]], dtype=np.float32)
    tensor = triton.InferInput("x", [2, 4], "FP32")
    tensor.set_data_from_numpy(x4, binary_data=True)
    result = client.infer("tfmodel", [tensor])
    np.testing.assert_allclose(result.as_numpy("y"), x4 * 3 - 1)
    assert result.as_numpy("label").tolist() == [1, 0]
    assert result.as_numpy("label").dtype == np.int64
    client.close()


def test_batching_merges_concurrent_requests_and_not_a_lone_one(server: Server) -> None:
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    lone = server.http.post("/v2/models/batchsize/infer", json=body).json()
    assert lone["outputs"][0]["data"] == [1.0]

    def ask(_: int) -> float:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            return float(http.post("/v2/models/batchsize/infer", json=body).json()["outputs"][0]["data"][0])

    with ThreadPoolExecutor(32) as pool:
        seen = list(pool.map(ask, range(256)))
    assert max(seen) > 1, "no two requests were ever merged"
    assert max(seen) <= 64
    metrics = server.http.get("/metrics").text
    assert 'tuxai_serve_batch_size_bucket{model="batchsize",version="1",le="1"}' in metrics


def test_wrong_inputs_get_400_naming_the_signature(server: Server) -> None:
    cases = [
        ({"name": "z", "shape": [1, 256], "datatype": "FP32", "data": [0.0] * 256}, "do not match the model's"),
        ({"name": "x", "shape": [1, 255], "datatype": "FP32", "data": [0.0] * 255}, "has shape [1, 255]"),
        ({"name": "x", "shape": [1, 256], "datatype": "FP64", "data": [0.0] * 256}, "is FP64"),
        ({"name": "x", "shape": [1, 256], "datatype": "FP32", "data": [0.0] * 3}, "3 values for shape"),
        ({"name": "x", "shape": [1, 256], "datatype": "NOPE", "data": [0.0]}, "unknown datatype"),
        ({"name": "x", "shape": [65, 256], "datatype": "FP32", "data": [0.0] * 65 * 256}, "over the model's"),
    ]
    for tensor, message in cases:
        answer = server.http.post("/v2/models/mlp/infer", json={"inputs": [tensor]})
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["error"]
    assert "x FP32 [-1, 256]" in server.http.post("/v2/models/mlp/infer", json={"inputs": [cases[0][0]]}).text
    assert server.http.post("/v2/models/nope/infer", json={"inputs": [cases[0][0]]}).status_code == 404
    assert server.http.post("/v2/models/mlp/infer", content=b"{not json").status_code == 400


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
TENSOR = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["x", "y", ""]) | st.text(max_size=3),
        "shape": st.lists(st.integers(-2, 300), max_size=3) | JSON,
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "BOOL", "fp32"]),
        "data": st.lists(st.floats(allow_nan=False, width=32) | st.integers(-5, 5), max_size=600) | JSON,
    },
    optional={"parameters": st.fixed_dictionaries({"binary_data_size": st.integers(-3, 2000) | JSON})},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.fixed_dictionaries({"inputs": st.lists(TENSOR, max_size=3)}, optional={"outputs": JSON, "id": JSON})
    | JSON,
    header=st.none() | st.integers(-5, 400),
    tail=st.binary(max_size=64),
)
def test_no_malformed_request_gets_a_500(server: Server, body: object, header: int | None, tail: bytes) -> None:
    payload = json.dumps(body).encode() + (tail if header is not None else b"")
    headers = {} if header is None else {"Inference-Header-Content-Length": str(header)}
    answer = server.http.post("/v2/models/mlp/infer", content=payload, headers=headers)
    assert answer.status_code in (200, 400), (answer.status_code, answer.text)
    assert server.http.get("/v2/health/live").status_code == 200


def test_broken_model_says_why_and_the_repository_extension(server: Server) -> None:
    ready = server.http.get("/v2/models/broken/ready")
    assert ready.status_code == 400 and "ONNX Runtime cannot load" in ready.json()["error"]
    # the repository extension needs the token the server made (E9)
    bearer = {"Authorization": f"Bearer {control_token_path(server.log.read_text()).read_text().strip()}"}
    index = {(r["name"], r.get("version")): r for r in server.http.post("/v2/repository/index", headers=bearer).json()}
    assert index[("broken", "1")]["state"] == "UNAVAILABLE" and index[("mlp", "1")]["state"] == "READY"
    assert server.http.post("/v2/repository/models/affine/unload", headers=bearer).status_code == 200
    assert server.http.get("/v2/models/affine/ready").status_code == 404
    assert server.http.post("/v2/repository/models/affine/load", headers=bearer).status_code == 200
    assert server.http.get("/v2/models/affine/ready").status_code == 200
    assert server.http.post("/v2/repository/models/ghost/load", headers=bearer).status_code == 400
    assert "failed to load" in Path(server.log).read_text()


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    slow_onnx(tmp_path / "repo" / "slow" / "1" / "model.onnx")
    (tmp_path / "repo" / "slow" / "config.yaml").write_text("max_batch_size: 1\nmax_queue: 2\n")
    server = Server(tmp_path / "repo", tmp_path)
    try:
        x = np.ones((1, 2048), dtype=np.float32)
        tensor = {"name": "x", "shape": [1, 2048], "datatype": "FP32", "parameters": {"binary_data_size": x.nbytes}}
        head = json.dumps({"inputs": [tensor]}).encode()
        headers = {"Inference-Header-Content-Length": str(len(head))}

        def ask(_: int) -> tuple[int, str | None]:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                answer = http.post("/v2/models/slow/infer", content=head + x.tobytes(), headers=headers)
                return answer.status_code, answer.headers.get("retry-after")

        with ThreadPoolExecutor(48) as pool:
            answers = list(pool.map(ask, range(96)))
        codes = [code for code, _ in answers]
        assert set(codes) <= {200, 503} and codes.count(503) > 0 and codes.count(200) > 0
        assert {after for code, after in answers if code == 503} == {"1"}
        assert server.http.get("/v2/health/live").status_code == 200  # and the server is still there
    finally:
        assert server.stop() == 0


def test_version_swap_under_load_drops_nothing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    mlp_onnx(root / "mlp" / "1" / "model.onnx", seed=1)
    server = Server(root, tmp_path)
    stop = threading.Event()
    results: list[tuple[int, str]] = []
    body = {"inputs": [{"name": "x", "shape": [1, 256], "datatype": "FP32", "data": [0.5] * 256}]}

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                answer = http.post("/v2/models/mlp/infer", json=body)
                results.append((answer.status_code, answer.json().get("model_version", "")))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        staging = tmp_path / "staging"
        mlp_onnx(staging / "model.onnx", seed=2)
        shutil.copytree(staging, root / "mlp" / ".2-incoming")
        (root / "mlp" / ".2-incoming").rename(root / "mlp" / "2")  # appears at once, complete
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(v == "2" for _, v in results[-20:]):
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        assert server.stop() == 0
    codes = {code for code, _ in results}
    versions = [v for _, v in results]
    assert codes == {200}, f"{len([c for c, _ in results if c != 200])} of {len(results)} requests failed"
    assert versions[0] == "1" and versions[-1] == "2" and len(results) > 100
    assert versions.index("2") > 0 and "1" not in versions[versions.index("2") + 50 :]  # swapped, once


def test_token_and_loopback_rule(tmp_path: Path, repo: Path) -> None:
    argv = [sys.executable, "-m", "tuxai", "serve", str(repo / "mlp" / "1" / "model.onnx"), "--host", "0.0.0.0"]
    refused = subprocess.run([*argv, "--port", "0"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--token-file" in refused.stderr
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    server = Server(repo / "mlp" / "1" / "model.onnx", tmp_path, "--token-file", str(token))
    try:
        assert server.http.get("/v2/models/model").status_code == 401
        assert server.http.get("/v2/health/live").status_code == 200
        metadata = server.http.get("/v2/models/model", headers={"Authorization": "Bearer s3cret"})
        assert metadata.status_code == 200 and metadata.json()["name"] == "model"  # named after the file
    finally:
        assert server.stop() == 0


def test_serve_as_a_scheduled_job_on_its_gpu(tmp_path: Path, repo: Path) -> None:
    from tests.daemon_helpers import DaemonProcess, finish

    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        env = {**__import__("os").environ, "TUXAI_HOME": str(daemon.home)}
        done = subprocess.run(
            [sys.executable, "-m", "tuxai", "submit", "--json", "--gpus", "1", "--serve", str(repo / "mlp")],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        job_id = json.loads(done.stdout)["id"]
        deadline = time.monotonic() + 90
        job = daemon.job(job_id)
        while not job.endpoint and time.monotonic() < deadline:
            time.sleep(0.2)
            job = daemon.job(job_id)
        assert job.endpoint, daemon.log(job_id)
        assert job.name == "serve-mlp" and job.spec.retries == 3 and len(job.gpus) == 1
        client = triton.InferenceServerClient(str(job.endpoint).removeprefix("http://"))
        tensor = triton.InferInput("x", [1, 256], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 256), dtype=np.float32))
        assert client.infer("mlp", [tensor]).as_numpy("y").shape == (1, 10)
        client.close()
        shown = subprocess.run([sys.executable, "-m", "tuxai", "show", str(job_id)], capture_output=True, text=True,
                               env=env).stdout  # fmt: skip
        assert f"endpoint  {job.endpoint}" in shown
        daemon.client.cancel(job_id)
        assert daemon.wait_all([job_id])[job_id].state == "cancelled"
        assert "drained and stopped (SIGTERM)" in daemon.log(job_id)
    finally:
        finish(daemon)


def test_onnx_runtime_threads_follow_the_cpu_affinity(tmp_path: Path) -> None:
    """Pinned to one CPU (as a --serve job is pinned to its CPUs), the model starts no pool thread.

    ONNX Runtime's default counts the machine's cores (here: one extra thread on one CPU).
    """
    model = mlp_onnx(tmp_path / "m.onnx", sizes=(4, 8, 2))
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "import onnxruntime\n"
        "from tuxai.serving.models import OnnxModel\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "count = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('Threads')).split()[1])\n"
        "before = count()\n"
        "model = OnnxModel(Path(sys.argv[1]))  # kept: a collected session joins its threads\n"
        "print(count() - before)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(model)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0", done.stdout + done.stderr
