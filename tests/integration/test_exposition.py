"""Both servers' /metrics scraped by a real Prometheus (Debian's ``prometheus``, which `make test`
installs): a model name and a job name holding ``"``, ``\\`` and a newline come back exact.

Prometheus is asked over its HTTP API for the series; the label values it stored are compared
with the names we gave, character for character, and its target must be up with no scrape error.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.daemon_helpers import DaemonProcess, finish, shell
from tests.integration.test_serving import Server
from tests.serving_models import batch_size_onnx

# Every character the text format escapes, and what a forged line would need.
MODEL_NAME = 'evil"\\\nforged_metric{x="y"} 666'
JOB_NAME = 'job"\\\nforged_job{x="y"} 1'
ROW = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """``prometheus`` scraping one target every second, on a port of its own."""

    def __init__(self, target: str, tmp: Path) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed: `make test` installs Debian's package (apt-get install prometheus)"
        config = tmp / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: tuxai\n    static_configs:\n      - targets: ['{target}']\n"
        )
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def series(self, query: str, timeout_s: float = 30.0) -> list[dict[str, str]]:
        """The label sets of ``query``'s result, once it has one (else the target's scrape error)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                answer = httpx.get(f"{self.url}/api/v1/query", params={"query": query}).json()
            except httpx.HTTPError:
                continue
            found = answer.get("data", {}).get("result", [])
            if found:
                return [row["metric"] for row in found]
        raise AssertionError(f"Prometheus never saw {query}: {self.target()}")

    def target(self) -> dict[str, object]:
        """The one scrape target's state (health, lastError)."""
        targets = httpx.get(f"{self.url}/api/v1/targets").json()["data"]["activeTargets"]
        assert len(targets) == 1
        return dict(targets[0])

    def stop(self) -> None:
        """Terminate and wait."""
        self.process.terminate()
        self.process.wait(timeout=10)


def _clean_scrape(prometheus: Prometheus) -> None:
    target = prometheus.target()
    assert target["health"] == "up" and target["lastError"] == "", target
    forged = httpx.get(f"{prometheus.url}/api/v1/label/__name__/values").json()["data"]
    assert not [name for name in forged if name.startswith("forged")], forged


@pytest.fixture
def evil_repo(tmp_path: Path) -> Path:
    """A repository with one model whose directory name needs every escape."""
    batch_size_onnx(tmp_path / "repo" / MODEL_NAME / "1" / "model.onnx")
    return tmp_path / "repo"


def test_model_name_with_quote_backslash_newline_scrapes_exactly(evil_repo: Path, tmp_path: Path) -> None:
    server = Server(evil_repo, tmp_path)
    prometheus = Prometheus(server.address, tmp_path)
    try:
        answer = server.http.post(f"/v2/models/{quote(MODEL_NAME, safe='')}/infer", json={"inputs": [ROW]})
        assert answer.status_code == 200, answer.text
        found = prometheus.series('tuxai_serve_requests_total{code="200"}')
        assert [(s["model"], s["version"]) for s in found] == [(MODEL_NAME, "1")]
        histogram = prometheus.series("tuxai_serve_request_seconds_count")
        assert {s["model"] for s in histogram} == {MODEL_NAME}
        _clean_scrape(prometheus)
    finally:
        prometheus.stop()
        assert server.stop() == 0


def test_job_name_with_quote_backslash_newline_scrapes_exactly(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home", extra=("--telemetry-period", "0.2")).start()
    prometheus = Prometheus((daemon.home / "metrics.addr").read_text().strip(), tmp_path)
    try:
        job_id = daemon.client.submit(shell("sleep 30", gpus=1, name=JOB_NAME, grace="1s"))
        found = prometheus.series("tuxai_job_running")
        assert [(s["job_id"], s["name"]) for s in found] == [(str(job_id), JOB_NAME)]
        holders = prometheus.series("tuxai_gpu_holder")
        assert {s["name"] for s in holders} == {JOB_NAME}
        _clean_scrape(prometheus)
        daemon.client.cancel(job_id)
    finally:
        prometheus.stop()
        finish(daemon)
