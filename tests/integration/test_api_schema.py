"""The daemon's OpenAPI document tells the truth (C11): schemathesis against a real daemon on TCP.

Every operation gets generated valid and invalid input, then short stateful sequences
(submit → cancel …): a few hundred requests with a fixed seed, ~20 s. (The coverage phase,
400 more boundary cases, takes ~25 s more and found nothing more: `st run --phases coverage`.)
No answer may be a 500 or a status the document does not list; content types, bodies and
headers must match what it declares; invalid input must be refused; a request without the
token must be refused. Left out: ``positive_data_acceptance`` (a well-formed spec can still
be refused: a workdir that does not exist, 9 GPUs on a 2-GPU box) and Starlette's ``Allow``
header on a 405. ``/v1/shutdown`` is not called (it works: the daemon stops), and a submitted
job's command is replaced by ``true`` (generated words must not run as root; the command's
checks have tests of their own in test_api_security.py and test_jobfile_security.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon_helpers import DaemonProcess, finish

ST = Path(sys.executable).parent / "st"
HOOKS = """
import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if case.path == "/v1/jobs" and isinstance(body, dict) and isinstance(body.get("spec"), dict):
        if isinstance(body["spec"].get("command"), (str, list)):
            body["spec"]["command"] = ["true"]
"""


@pytest.fixture(scope="module")
def tcp_daemon() -> Iterator[tuple[DaemonProcess, str, str]]:
    """A daemon listening on TCP: the process, its base URL and its token."""
    base = Path(tempfile.mkdtemp(prefix="tuxai-api-schema-"))
    daemon = DaemonProcess(base / "home", extra=("--tcp", "127.0.0.1:0")).start()
    try:
        url = f"http://{(daemon.home / 'tcp.addr').read_text().strip()}"
        yield daemon, url, (daemon.home / "token").read_text().strip()
    finally:
        finish(daemon)
        shutil.rmtree(base, ignore_errors=True)


def test_C11_schemathesis_finds_no_answer_the_document_does_not_declare(
    tcp_daemon: tuple[DaemonProcess, str, str], tmp_path: Path
) -> None:
    daemon, url, token = tcp_daemon
    (tmp_path / "tuxai_st_hooks.py").write_text(HOOKS)
    argv = [
        *(str(ST), "run", f"{url}/openapi.json", "--header", f"Authorization: Bearer {token}"),
        *("--checks", "all", "--exclude-checks", "positive_data_acceptance,allow_header_conformance"),
        *("--exclude-path", "/v1/shutdown", "--phases", "fuzzing,stateful"),
        *("--max-examples", "15", "--seed", "1", "--workers", "1", "--no-color", "--warnings", "off"),
        *("--generation-database", "none", "--request-timeout", "10"),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tuxai_st_hooks", "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=100, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    assert daemon.client.health().ok


def test_C11_the_document_declares_the_submit_body_and_the_errors(tcp_daemon: tuple[DaemonProcess, str, str]) -> None:
    _, url, token = tcp_daemon
    document = httpx.get(f"{url}/openapi.json", headers={"authorization": f"Bearer {token}"}).json()
    submit = document["paths"]["/v1/jobs"]["post"]
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SubmitBody"}
    spec = document["components"]["schemas"]["JobSpecFields"]
    assert spec["required"] == ["command"] and spec["additionalProperties"] is False
    assert {"gpus", "mem", "time", "export"} <= set(spec["properties"])
    for path, method, codes in (
        ("/v1/jobs", "post", {"201", "400", "401", "403", "413", "503", "507"}),
        ("/v1/jobs/{job_id}/cancel", "post", {"200", "400", "401", "403", "404", "409", "413"}),
        ("/v1/jobs/{job_id}/log", "get", {"200", "403", "404"}),
    ):
        responses = document["paths"][path][method]["responses"]
        assert codes <= set(responses), (path, sorted(responses))
        assert "422" not in responses
        for code in codes - {"200", "201"}:
            error = responses[code]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}, (path, code)
