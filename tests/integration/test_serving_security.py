"""The model server's security findings (E2, E4, E7, E8, E9), each against a real ``tuxai serve`` on 127.0.0.1.

One server with the defaults (loopback, no token) serves most tests; those that need other flags
or another environment start their own.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from tests.integration import test_serving
from tests.integration.test_serving import Server
from tests.serving_models import batch_size_onnx, control_token_path, mlp_onnx
from tuxai.errors import UsageError
from tuxai.serving.tokens import make_control_token

NOBODY = 65534
MiB = 1024 * 1024
# A model directory whose name holds every character the Prometheus text format must escape.
EVIL = 'evil"\\\nforged_metric{x="y"} 666'
ROW = {"name": "x", "shape": [1, 256], "datatype": "FP32", "data": [0.5] * 256}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    mlp_onnx(root / "mlp" / "1" / "model.onnx")
    batch_size_onnx(root / EVIL / "1" / "model.onnx")
    return root


server = test_serving.server  # the same module-wide server, started on this module's repo


def memory_kib(server: Server) -> dict[str, int]:
    """The server process's VmRSS and VmHWM (peak), in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines())
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def exchange(server: Server, head: bytes, body: Iterable[bytes] = (), timeout_s: float = 10) -> bytes:
    """Send ``head`` then whatever of ``body`` the server takes; everything it answered until it closed."""
    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(head)
        try:
            for chunk in body:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what it said is in our receive buffer
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
        return answer


def status_and_json(answer: bytes) -> tuple[int, dict[str, object]]:
    """``HTTP/1.1 413 …\\r\\n…\\r\\n\\r\\n{json}`` → (413, the JSON)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


# ---- E4: request bodies and heads are bounded ----------------------------------------------


def test_E4_declared_oversize_body_is_refused_before_it_is_sent(server: Server) -> None:
    head = (b"POST /v2/models/mlp/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 104857600\r\n\r\n")  # fmt: skip
    code, error = status_and_json(exchange(server, head, timeout_s=5))  # not one body byte sent
    assert code == 413 and "64.0 MiB" in str(error["error"]) and "--max-body" in str(error["error"])
    with_expect = head.replace(b"\r\n\r\n", b"\r\nexpect: 100-continue\r\n\r\n")
    answer = exchange(server, with_expect, timeout_s=5)
    assert answer.startswith(b"HTTP/1.1 413") and b"100 Continue" not in answer


def test_E4_streamed_body_is_cut_at_the_cap_and_memory_stays_flat(server: Server) -> None:
    before = memory_kib(server)

    def chunks() -> Iterator[bytes]:
        piece = b"0.0," * (MiB // 4)
        yield b"%x\r\n" % len(b'{"inputs":[') + b'{"inputs":[\r\n'
        for _ in range(100):  # 100 MiB of JSON, chunked: no Content-Length to refuse early
            yield b"%x\r\n" % len(piece) + piece + b"\r\n"
        yield b"0\r\n\r\n"

    head = b"POST /v2/models/mlp/infer HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    code, error = status_and_json(exchange(server, head, chunks(), timeout_s=30))
    assert code == 413 and "64.0 MiB" in str(error["error"])
    after = memory_kib(server)
    # The old server peaked at +1.6 GB for a 100 MB JSON body; what it holds now is the cap at most.
    assert after["VmHWM"] - before["VmRSS"] < 160 * 1024, (before, after)
    assert server.http.post("/v2/models/mlp/infer", json={"inputs": [ROW]}).status_code == 200


def test_E4_body_cap_is_a_flag_and_a_body_under_it_is_served(tmp_path: Path, repo: Path) -> None:
    small = Server(repo / "mlp", tmp_path, "--max-body", "64KiB")
    try:
        rows = {"name": "x", "shape": [60, 256], "datatype": "FP32", "parameters": {"binary_data_size": 60 * 1024}}
        head = json.dumps({"inputs": [rows]}).encode()
        under = small.http.post("/v2/models/mlp/infer", content=head + np.zeros((60, 256), np.float32).tobytes(),
                                headers={"Inference-Header-Content-Length": str(len(head))})  # fmt: skip
        assert under.status_code == 200, under.text
        over = small.http.post("/v2/models/mlp/infer", content=b" " * (64 * 1024 + 1))
        assert over.status_code == 413 and "64.0 KiB" in over.json()["error"]
        assert over.headers["connection"] == "close"
    finally:
        assert small.stop() == 0


def test_E4_oversized_request_head_is_refused(server: Server) -> None:
    head = b"GET /v2/models/mlp HTTP/1.1\r\nhost: x\r\n" + b"".join(
        b"x-filler-%d: %s\r\n" % (i, b"a" * 1000) for i in range(1024)
    )  # 1 MiB of headers, never finished
    answer = exchange(server, head, timeout_s=5)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert server.http.get("/v2/models/mlp").status_code == 200


# ---- E7: label values are escaped ----------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{{LABEL}(?:,{LABEL})*\}})? (\S+)$")


def samples(exposition: str) -> list[tuple[str, dict[str, str]]]:
    """Every sample of a Prometheus text exposition, its labels unescaped; fails on a malformed line."""
    out = []
    for line in exposition.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")) or not line:
            continue
        match = SAMPLE.match(line)
        assert match is not None, f"malformed exposition line: {line!r}"
        float(line.rsplit(" ", 1)[1])
        labels = {
            key: re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
            for key, value in re.findall(LABEL, line[len(match.group(1)) :])
        }
        out.append((match.group(1), labels))
    return out


def test_E7_model_name_cannot_forge_a_metric(server: Server) -> None:
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    served = server.http.post(f"/v2/models/{quote(EVIL, safe='')}/infer", json=body)
    assert served.status_code == 200, served.text
    ghost = 'ghost"} 1\nforged_metric{a="b"} 666\n#'
    assert server.http.post(f"/v2/models/{quote(ghost, safe='')}/infer", json=body).status_code == 404
    seen = samples(server.http.get("/metrics").text)
    assert "forged_metric" not in {name for name, _ in seen}
    ok = [labels for name, labels in seen if name == "tuxai_serve_requests_total" and labels.get("code") == "200"]
    assert {"model": EVIL, "version": "1", "code": "200"} in ok


# ---- E8: unknown names make no series ------------------------------------------------------


def test_E8_unknown_model_names_make_no_metric_series(server: Server) -> None:
    before = memory_kib(server)
    for i in range(2000):
        assert server.http.post(f"/v2/models/ghost-{i}/infer", json={"inputs": [ROW]}).status_code == 404
    for version in range(2, 200):
        answer = server.http.post(f"/v2/models/mlp/versions/{version}/infer", json={"inputs": [ROW]})
        assert answer.status_code == 404
    exposition = server.http.get("/metrics").text
    assert "ghost-" not in exposition and len(exposition) < 20_000  # the old server: 24.7 MB after 20,000 names
    seen = samples(exposition)
    assert {labels.get("model") for _, labels in seen} <= {None, "", "mlp", EVIL}
    assert {labels.get("version") for _, labels in seen} <= {None, "", "1"}
    counted = [labels for name, labels in seen if name == "tuxai_serve_requests_total" and labels["code"] == "404"]
    assert len(counted) == 2  # model="" for the ghosts, model="mlp" version="" for the missing versions
    assert memory_kib(server)["VmRSS"] - before["VmRSS"] < 16 * 1024


# ---- E2: duplicate inputs ------------------------------------------------------------------


def test_E2_duplicate_input_names_are_refused(server: Server) -> None:
    other = {**ROW, "data": [9.0] * 256}
    answer = server.http.post("/v2/models/mlp/infer", json={"inputs": [ROW, other]})
    assert answer.status_code == 400 and "'x'" in answer.json()["error"] and "twice" in answer.json()["error"]
    x = np.ones((1, 256), np.float32).tobytes()
    binary = {"name": "x", "shape": [1, 256], "datatype": "FP32", "parameters": {"binary_data_size": len(x)}}
    head = json.dumps({"inputs": [binary, binary]}).encode()
    answer = server.http.post("/v2/models/mlp/infer", content=head + x + x,
                              headers={"Inference-Header-Content-Length": str(len(head))})  # fmt: skip
    assert answer.status_code == 400 and "'x'" in answer.json()["error"]
    outputs = {"inputs": [ROW], "outputs": [{"name": "y"}, {"name": "y"}]}
    answer = server.http.post("/v2/models/mlp/infer", json=outputs)
    assert answer.status_code == 400 and "'y'" in answer.json()["error"]


# ---- E9: repository control needs a token, also on loopback --------------------------------


def test_E9_repository_control_needs_the_token_on_loopback(server: Server) -> None:
    for path in ("/v2/repository/models/mlp/unload", "/v2/repository/models/mlp/load", "/v2/repository/index"):
        assert server.http.post(path).status_code == 401
        assert server.http.post(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    token_file = control_token_path(server.log.read_text())
    info = token_file.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert stat.S_IMODE(token_file.parent.lstat().st_mode) == 0o700
    bearer = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    assert server.http.post("/v2/repository/models/mlp/unload", headers=bearer).status_code == 200
    assert server.http.get("/v2/models/mlp/ready").status_code == 404
    assert server.http.post("/v2/repository/models/mlp/load", headers=bearer).status_code == 200
    # inference, metadata, health and metrics stay open on loopback
    assert server.http.post("/v2/models/mlp/infer", json={"inputs": [ROW]}).status_code == 200
    for path in ("/v2/models/mlp", "/v2/models/mlp/ready", "/v2/health/ready", "/v2", "/metrics"):
        assert server.http.get(path).status_code == 200, path


def test_E9_another_local_user_cannot_unload_nor_read_the_token(server: Server) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: the attacker runs as nobody (uid 65534)")
    url = f"{server.url}/v2/repository/models/mlp/unload"
    done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url],
                          capture_output=True, text=True, cwd="/tmp", user=NOBODY, group=NOBODY, extra_groups=[],
                          timeout=30, check=True)  # fmt: skip
    assert done.stdout == "401"
    token_file = control_token_path(server.log.read_text())
    read = subprocess.run(["cat", str(token_file)], capture_output=True, text=True, cwd="/tmp", user=NOBODY,
                          group=NOBODY, extra_groups=[], timeout=30)  # fmt: skip
    assert read.returncode != 0 and read.stdout == ""
    assert server.http.get("/v2/models/mlp/ready").status_code == 200


def test_E9_token_goes_under_the_runtime_dir_and_an_unsafe_one_is_refused(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    running = Server(repo / "mlp", tmp_path)
    try:
        token_file = control_token_path(running.log.read_text())
        assert token_file.parent == runtime / "tuxai" and token_file.is_file()
        assert stat.S_IMODE((runtime / "tuxai").lstat().st_mode) == 0o700
    finally:
        assert running.stop() == 0
    assert not token_file.exists()  # the token ends with its server
    argv = [sys.executable, "-m", "tuxai", "serve", str(repo / "mlp"), "--port", "0"]
    (runtime / "tuxai").chmod(0o777)  # somebody else could swap the file
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "0700" in refused.stderr
    (runtime / "tuxai").chmod(0o700)
    (runtime / "tuxai").rename(runtime / "elsewhere")
    (runtime / "tuxai").symlink_to(runtime / "elsewhere")
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "symbolic link" in refused.stderr


def test_E9_a_stale_token_file_is_replaced_and_a_foreign_directory_refused(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    first = make_control_token(8000, environ)
    second = make_control_token(8000, environ)  # the first server died without removing its file
    assert first.path == second.path == tmp_path / "tuxai" / "serve-8000.token"
    assert first.token != second.token and second.path.read_text() == second.token + "\n"
    assert stat.S_IMODE(second.path.lstat().st_mode) == 0o600
    second.remove()
    assert not second.path.exists() and (tmp_path / "tuxai").is_dir()  # the runtime directory stays
    if os.getuid() == 0:
        os.chown(tmp_path / "tuxai", NOBODY, NOBODY)
        with pytest.raises(UsageError, match="uid 65534"):
            make_control_token(8000, environ)
    fallback = make_control_token(8001, {})
    try:
        assert fallback.path.parent.name.startswith("tuxai-serve-")
        assert stat.S_IMODE(fallback.path.parent.lstat().st_mode) == 0o700
    finally:
        fallback.remove()
    assert not fallback.path.parent.exists()
