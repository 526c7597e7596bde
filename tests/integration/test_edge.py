"""Where both servers listen (tuxai/edge/listen.py), for real: a bad or taken address is one line
and exit 2 from the daemon and from `tuxai serve`; loopback means every loopback address."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import TWO_GPUS
from tests.integration.test_serving import Server
from tests.serving_models import mlp_onnx

PY = sys.executable


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mlp_onnx(tmp_path_factory.mktemp("model") / "m.onnx", sizes=(4, 8, 2))


def one_line_refusal(argv: list[str]) -> str:
    """The one stderr line of a server that must refuse to start (exit 2)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr)
    return lines[0]


def daemon(home: Path, *flags: str) -> list[str]:
    return [PY, "-m", "tuxai.api.server", "--home", str(home), "--inventory", str(TWO_GPUS), *flags]


def test_a_port_past_65535_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Before: ``OverflowError: bind(): port must be 0-65535`` and its traceback (exit 1)."""
    line = one_line_refusal(daemon(tmp_path / "a", "--metrics-addr", "127.0.0.1:0", "--tcp", "127.0.0.1:70000"))
    assert line.startswith("error: --tcp must be HOST:PORT, got '127.0.0.1:70000'"), line
    line = one_line_refusal(daemon(tmp_path / "b", "--metrics-addr", "127.0.0.1:70000"))
    assert line.startswith("error: --metrics-addr must be HOST:PORT"), line


def test_a_taken_port_is_one_line_from_both_servers(tmp_path: Path, taken: int, model: Path) -> None:
    line = one_line_refusal(daemon(tmp_path / "home", "--metrics-addr", "127.0.0.1:0", "--tcp", f"127.0.0.1:{taken}"))
    assert line == f"error: cannot listen on 127.0.0.1:{taken}: Address already in use (pick another --tcp)"
    line = one_line_refusal([PY, "-m", "tuxai", "serve", str(model), "--port", str(taken)])
    assert f"cannot listen on 127.0.0.1:{taken}: Address already in use" in line and "--port" in line


def test_any_loopback_address_serves_without_a_token_and_ipv6_gets_a_real_url(tmp_path: Path, model: Path) -> None:
    """Before: 127.0.0.2 was refused as "not loopback" (a set of three names), and on ::1 the
    endpoint printed was ``http://::1:PORT``, which no client can use."""
    for host in ("127.0.0.2", "::1"):
        server = Server(model, tmp_path, "--host", host)
        try:
            assert server.http.get("/v2/models/m/ready").status_code == 200
        finally:
            assert server.stop() == 0
    assert server.url.startswith("http://[::1]:")
