"""Serving for daily use, for real: `tuxai serve` of the example repository (examples/models) and
`tuxai infer` as subprocesses; the listing, the start that fails, swaps in the log, 404s in /metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
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


def test_allow_empty_stays_up_and_loads_versions_and_models_that_appear(tmp_path: Path) -> None:
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
        mlp_onnx(tmp_path / "new" / "1" / "model.onnx", sizes=(4, 2))
        (tmp_path / "new").rename(tmp_path / "repo" / "two")  # a new model directory: the watch loads it too
        while server.http.get("/v2/models/two/ready").status_code != 200 and time.monotonic() < deadline + 20:
            time.sleep(0.1)
        assert server.http.get("/v2/models/two/ready").status_code == 200
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
    said = "model mlp: version 1 → 2 (watch; 2/ appeared, 1/ left the version policy)"
    assert len(swaps) == 1 and swaps[0].endswith(said), swaps


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


def infer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tuxai infer ARGS` as a user runs it."""
    return subprocess.run([*TUXAI, "infer", *args], capture_output=True, text=True, timeout=60, env=env)


def test_tuxai_infer_json_values_and_npy_files_json_and_binary(server: Server, tmp_path: Path) -> None:
    done = infer("add_sub", "--url", server.url, "--input", "a=[[1, 2, 3, 4]]", "--input", "b=[[4, 3, 2, 1]]")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"model add_sub version 1 \(\d+\.\d ms\)", lines[0]), lines
    assert lines[1:] == ["sum  FP32  [1, 4]", "  [[5., 5., 5., 5.]]", "difference  FP32  [1, 4]",
                         "  [[-3., -1.,  1.,  3.]]"]  # fmt: skip
    x = np.random.default_rng(5).standard_normal((10, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    answers = []
    for flags in ((), ("--binary",)):
        done = infer("classify", "--url", server.url, "-i", f"x=@{tmp_path / 'x.npy'}", "--json", *flags)
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout))
    assert answers[0] == answers[1]  # JSON and binary tensors carry the same answer
    weights = np.array([[2, -1, -1], [-1, 2, -1], [-1, -1, 2], [0.5, 0.5, 0.5]], dtype=np.float32)
    outputs = {o["name"]: o for o in answers[0]["outputs"]}
    assert outputs["label"] == {"name": "label", "datatype": "INT64", "shape": [10],
                                "data": np.argmax(x @ weights, axis=1).tolist()}  # fmt: skip
    assert outputs["probabilities"]["shape"] == [10, 3] and answers[0]["model_version"] == "1"
    only = infer("classify", "--url", server.url, "-i", f"x=@{tmp_path / 'x.npy'}", "-o", "label", "--version", "1")
    assert only.returncode == 0 and "label  INT64  [10]" in only.stdout and "probabilities" not in only.stdout


def test_tuxai_infer_errors_are_one_line_and_non_zero(server: Server) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there once closed
    row = "x=[[1, 2, 3, 4]]"
    cases = [
        (["classify", "--url", nobody, "-i", row], f"no model server answers at {nobody}"),
        (["ghost", "--url", server.url, "-i", "x=1"], "answered 404: no model 'ghost' is loaded"),
        (["classify", "--url", server.url, "--version", "9", "-i", row], "404: model 'classify' has no version 9"),
        (["classify", "--url", server.url, "-i", "z=[[1, 2, 3, 4]]"], "answered 400: inputs ['z'] do not match"),
        (["classify", "--url", server.url, "-i", "x=[1, 2, 3, 4]"], "has shape [4]; the model expects x FP32 [-1, 4]"),
        (["broken", "--url", server.url, "-i", "x=1"], "answered 503: model 'broken' is not ready"),
        (["classify", "--url", server.url, "-i", "x=[[1, 2], [3]]"], "the lists are ragged"),
        (["classify", "--url", server.url, "-i", "x=@/nonexistent.npy"], "cannot read /nonexistent.npy"),
        (["classify", "--url", server.url, "--job", "3", "-i", row], "--url and --job both name the server"),
    ]  # fmt: skip
    for args, said in cases:
        done = infer(*args)
        assert done.returncode == 2 and done.stdout == "", (args, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and said in done.stderr, done.stderr


def test_tuxai_infer_with_the_servers_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    model = build_examples(tmp_path / "repo") / "add_sub" / "1" / "model.onnx"  # served alone: named "model"
    guarded = Server(model, tmp_path, "--token-file", str(token))
    try:
        args = ["model", "--url", guarded.url, "-i", "a=[[1, 1, 1, 1]]", "-i", "b=[[1, 1, 1, 1]]", "--json"]
        refused = infer(*args)
        assert refused.returncode == 2 and "answered 401" in refused.stderr and "--token-file" in refused.stderr
        allowed = infer(*args, "--token-file", str(token))
        assert allowed.returncode == 0, allowed.stderr
        assert json.loads(allowed.stdout)["outputs"][0]["data"] == [2.0] * 4
    finally:
        assert guarded.stop() == 0


def test_tuxai_infer_finds_a_served_job(tmp_path: Path) -> None:
    from tests.daemon_helpers import DaemonProcess, finish

    repo = build_examples(tmp_path / "repo")
    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        env = {**os.environ, "TUXAI_HOME": str(daemon.home)}
        missing = infer("add_sub", "--job", "4242", "-i", "a=1", env=env)
        assert missing.returncode == 2 and "no job 4242" in missing.stderr and missing.stderr.count("\n") == 1
        done = subprocess.run([*TUXAI, "submit", "--json", "--gpus", "1", "--serve", str(repo)],
                              capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        job_id = json.loads(done.stdout)["id"]
        deadline = time.monotonic() + 90
        while not daemon.job(job_id).endpoint and time.monotonic() < deadline:
            time.sleep(0.2)
        args = ["add_sub", "--job", str(job_id), "-i", "a=[[1, 2, 3, 4]]", "-i", "b=[[1, 1, 1, 1]]", "--json"]
        answer = infer(*args, env=env)
        assert answer.returncode == 0, answer.stderr + daemon.log(job_id)
        assert json.loads(answer.stdout)["outputs"][0]["data"] == [2.0, 3.0, 4.0, 5.0]
        daemon.client.cancel(job_id)
        daemon.wait_all([job_id])
        ended = infer(*args, env=env)
        assert ended.returncode == 2 and f"job {job_id} serves no model now (it is cancelled)" in ended.stderr
    finally:
        finish(daemon)


def test_the_request_examples_of_docs_serving_work(server: Server) -> None:
    """docs/serving.md's curl lines and tritonclient snippet, run against the example repository."""
    page = (REPO_ROOT / "docs" / "serving.md").read_text()
    curls = [line for line in page.splitlines() if line.startswith("curl -s http://127.0.0.1:8000/v2/models")]
    assert len(curls) == 2
    answers = []
    for line in curls:
        line = line.split("  #")[0].replace("http://127.0.0.1:8000", server.url)
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout))
    assert answers[0]["outputs"][0] == {"name": "sum", "datatype": "FP32", "shape": [1, 4], "data": [5.0] * 4}
    assert {m["name"] for m in answers[1]["models"]} == {"add_sub", "classify", "broken"}
    snippet = re.search(r"```python\n(.*?)```", page, re.DOTALL)
    assert snippet is not None
    code = snippet.group(1).replace("127.0.0.1:8000", server.address)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[0 2] [[")
