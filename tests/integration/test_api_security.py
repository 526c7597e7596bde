"""The daemon's API under hostile input, over real HTTP on its Unix socket and on TCP.

Bad input is one ``{error, message, hint}`` 4xx (C1, C3–C7, C10), what the daemon reads is
capped (C9 bodies, B4 headers), TCP needs the token for everything (B2, B4), one rule says
what a user sees of another user's job (A13, B6), and the CLI prints users' text as text (A14).
One daemon (root, with a home ``nobody`` can reach) serves the whole module.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.daemon_helpers import DaemonProcess, finish, shell
from tests.integration.test_identity import as_nobody
from tuxai.api.views import public_fields, public_name, shown
from tuxai.daemon.config import Caller
from tuxai.errors import UsageError
from tuxai.model.job import JobRecord, JobSpec, JobState

REPO = Path(__file__).parent.parent.parent
TUXAI = REPO / ".venv" / "bin" / "tuxai"
MiB = 2**20


@dataclass
class Api:
    """The daemon and a client for each of its listeners."""

    daemon: DaemonProcess
    unix: httpx.Client
    tcp: httpx.Client  # no token
    token: str
    metrics_url: str

    @property
    def socket_path(self) -> str:
        return str(self.daemon.home / "tuxai.sock")


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    """A daemon as root (so ``nobody`` can be a second user) with TCP and a metrics listener."""
    if os.getuid() != 0:
        pytest.skip("needs root: another user (nobody) must reach the daemon's socket")
    base = Path(tempfile.mkdtemp(prefix="tuxai-api-security-"))
    base.chmod(0o755)
    daemon = DaemonProcess(base / "home", extra=("--tcp", "127.0.0.1:0")).start()
    home = daemon.home
    unix = httpx.Client(transport=httpx.HTTPTransport(uds=str(home / "tuxai.sock")), base_url="http://tuxai")
    tcp = httpx.Client(base_url=f"http://{(home / 'tcp.addr').read_text().strip()}")
    metrics = f"http://{(home / 'metrics.addr').read_text().strip()}"
    try:
        yield Api(daemon, unix, tcp, (home / "token").read_text().strip(), metrics)
    finally:
        unix.close()
        tcp.close()
        finish(daemon)
        shutil.rmtree(base, ignore_errors=True)


def refused(response: httpx.Response, status: int = 400) -> str:
    """The message of an error answer in our shape with ``status``."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert {"error", "message", "hint"} <= set(body) <= ERROR_KEYS, body
    assert all(isinstance(v, str | int) for v in body.values()) and body["message"], body
    return str(body["message"])


ERROR_KEYS = {"error", "message", "hint", "job_id", "from_state", "to_state", "tool", "problem"}  # wire.ErrorBody


def post_raw(api: Api, body: bytes) -> httpx.Response:
    """POST /v1/jobs with ``body`` as it is (JSON with NaN, escapes of lone surrogates …)."""
    return api.unix.post("/v1/jobs", content=body, headers={"content-type": "application/json"})


def submit(api: Api, spec: dict[str, object], environment: dict[str, str] | None = None) -> httpx.Response:
    return api.unix.post("/v1/jobs", json={"spec": spec, "environment": environment or {}})


def job_ids(api: Api) -> set[int]:
    return {j.id for j in api.daemon.client.jobs(["pending", "running", "requeued", "failed", "succeeded"])}


# ---- C1: every validation error is our 400 ------------------------------------------------------------


MALFORMED = [
    b'{"spec": {"command": ["true"]}',
    b"[1, 2]",
    b"",
    b'{"spec": "x"}',
    b'{"spec": {"command": ["true"]}, "x": 1}',
]


@pytest.mark.parametrize("body", MALFORMED)
def test_C1_a_malformed_body_is_our_400_not_fastapis_422(api: Api, body: bytes) -> None:
    refused(post_raw(api, body))


def test_C1_bad_query_values_are_our_400(api: Api) -> None:
    assert "offset" in refused(api.unix.get("/v1/jobs/1/log", params={"offset": -1}))
    assert "offset" in refused(api.unix.get("/v1/jobs/1/log", params={"offset": "ten"}))
    assert "unknown state" in refused(api.unix.get("/v1/jobs", params={"state": "bogus"}))


def test_C1_unknown_paths_and_methods_answer_in_our_shape(api: Api) -> None:
    refused(api.unix.get("/v1/nothing"), 404)
    refused(api.unix.delete("/v1/jobs"), 405)


# ---- C3–C7: the spec and the environment are checked once, in jobfile ----------------------------------


@pytest.mark.parametrize(("field", "value"), [("mem", -1), ("gpu_mem", -(2**30)), ("mem", 0), ("gpu_mem", "0MiB")])
def test_C3_non_positive_sizes_are_refused_and_nothing_is_stored(api: Api, field: str, value: object) -> None:
    before = job_ids(api)
    assert f"spec: {field} must be a size" in refused(submit(api, {"command": ["true"], field: value}))
    assert job_ids(api) == before


@pytest.mark.parametrize("field", ["time", "grace", "retry_backoff", "gpu_share", "priority", "gpus"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_C4_nan_and_infinity_in_json_are_refused(api: Api, field: str, value: str) -> None:
    body = f'{{"spec": {{"command": ["true"], "{field}": {value}}}}}'.encode()
    assert f"spec: {field} must be" in refused(post_raw(api, body))


def test_C5_a_time_limit_of_1e300_is_refused_with_the_cap(api: Api) -> None:
    message = refused(submit(api, {"command": ["true"], "time": 1e300}))
    assert "spec: time must be at most 365 days" in message


@pytest.mark.parametrize(
    ("spec", "environment", "where"),
    [
        ({"command": ["echo", "a\x00b"]}, {}, "spec: command"),
        ({"command": ["true"], "export": {"A": "x\x00"}}, {}, "spec: export"),
        ({"command": ["true"]}, {"A\x00": "1"}, "environment"),
        ({"command": ["true"]}, {"A": "1\x00"}, "environment: A"),
        ({"command": ["true"]}, {"A=B": "1"}, "environment: 'A=B' is not a variable name"),
    ],
)
def test_C6_nul_bytes_and_bad_variable_names_are_refused_at_submit(
    api: Api, spec: dict[str, object], environment: dict[str, str], where: str
) -> None:
    before = job_ids(api)
    assert where in refused(submit(api, spec, environment))
    assert job_ids(api) == before


@pytest.mark.parametrize(
    "body",
    [
        rb'{"spec": {"command": ["echo", "\ud800"]}}',
        rb'{"spec": {"command": ["true"], "name": "\udfff"}}',
        rb'{"spec": {"command": ["true"]}, "environment": {"A": "\ud800"}}',
        rb'{"spec": {"command": ["true"]}, "environment": {"\ud800": "x"}}',
        rb'{"spec": {"command": ["true"], "\ud800": 1}}',
    ],
)
def test_C7_lone_surrogates_are_a_400_not_a_500(api: Api, body: bytes) -> None:
    refused(post_raw(api, body))


def test_C7_the_sdk_sends_any_text_and_the_daemon_names_what_is_wrong(api: Api) -> None:
    # A variable holding bytes that are not UTF-8 arrives in os.environ as a lone surrogate.
    with pytest.raises(UsageError, match="environment: LANG_BYTES is not UTF-8 text"):
        api.daemon.client.submit({"command": ["true"]}, environment={"LANG_BYTES": "caf\udce9"})
    with pytest.raises(UsageError, match="spec: grace must be a finite duration"):
        api.daemon.client.submit({"command": ["true"], "grace": float("nan")}, environment={})


# ---- C10: job ids out of range --------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["99999999999999999999", str(2**63), "-1", "abc"])
def test_C10_job_ids_beyond_what_the_store_holds_are_404(api: Api, job_id: str) -> None:
    refused(api.unix.get(f"/v1/jobs/{job_id}"), 404)
    refused(api.unix.post(f"/v1/jobs/{job_id}/cancel"), 404)
    refused(api.unix.get(f"/v1/jobs/{job_id}/log"), 404)


def test_C10_a_log_offset_beyond_a_file_is_refused(api: Api) -> None:
    job_id = api.daemon.client.submit(shell("echo hi"))
    assert "offset" in refused(api.unix.get(f"/v1/jobs/{job_id}/log", params={"offset": 2**64}))


# ---- C9: request bodies are capped ---------------------------------------------------------------------


def raw_exchange(path: str, head: bytes, body_chunks: Iterable[bytes] = ()) -> bytes:
    """Send ``head`` then chunks on a Unix socket until the server answers; what it answered."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                if select.select([sock], [], [], 0)[0]:
                    break  # it answered already
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed: read what it said
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer


def _length(answer: bytes) -> int:
    match = re.search(rb"(?i)content-length: *(\d+)", answer)
    return int(match.group(1)) if match else 0


def status_and_body(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), answer[:200]
    return int(head.split()[1]), json.loads(body)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


POST = b"POST /v1/jobs HTTP/1.1\r\nhost: tuxai\r\ncontent-type: application/json\r\n"


def test_C9_a_declared_100MB_body_is_refused_before_it_is_read(api: Api) -> None:
    head = POST + b"content-length: 104857600\r\n\r\n"
    status, body = status_and_body(raw_exchange(api.socket_path, head))
    assert status == 413 and set(body) == {"error", "message", "hint"} and "1 MiB" in body["message"]


def test_C9_a_chunked_100MB_body_is_cut_off_and_the_daemon_stays_small(api: Api) -> None:
    assert api.daemon.process is not None
    pid = api.daemon.process.pid
    before = rss_bytes(pid)
    head = POST + b"transfer-encoding: chunked\r\n\r\n"
    piece = b"x" * 65536
    chunks = (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(100 * MiB // len(piece)))
    status, body = status_and_body(raw_exchange(api.socket_path, head, chunks))
    assert status == 413 and set(body) == {"error", "message", "hint"}
    assert rss_bytes(pid) - before < 30 * MiB
    assert api.daemon.client.health().ok


def test_C9_bodies_under_the_cap_still_work(api: Api) -> None:
    spec = {"command": ["true"], "name": "x" * 1000, "hold": True}
    response = api.unix.post("/v1/jobs", json={"spec": spec, "environment": {f"V{i}": "y" * 500 for i in range(500)}})
    assert response.status_code == 201, response.text
    api.daemon.client.cancel(response.json()["id"])


# ---- B2, B4: TCP needs the token for everything; headers are capped -----------------------------------


def test_B2_a_non_ascii_bearer_token_is_refused_cleanly(api: Api) -> None:
    for token in (b"Bearer \xc3\xa9t\xc3\xa9", b"Bearer \xff", b"Bearer " + api.token.encode() + b"\xe9"):
        response = api.tcp.get("/v1/jobs", headers=[(b"authorization", token)])
        assert "token" in refused(response, 401)


@pytest.mark.parametrize("path", ["/v1/health", "/openapi.json", "/docs", "/redoc", "/metrics", "/v1/jobs", "/nope"])
def test_B4_on_tcp_every_path_needs_the_token(api: Api, path: str) -> None:
    assert "token" in refused(api.tcp.get(path), 401)
    with_token = api.tcp.get(path, headers={"authorization": f"Bearer {api.token}"})
    assert with_token.status_code == (404 if path == "/nope" else 200)


def test_B4_the_metrics_listener_and_the_socket_need_no_token(api: Api) -> None:
    assert httpx.get(f"{api.metrics_url}/metrics").status_code == 200
    assert api.unix.get("/v1/health").json()["ok"] is True


@pytest.mark.parametrize("where", ["header", "url"])
def test_B4_huge_headers_are_refused_with_431(api: Api, where: str) -> None:
    big = b"a" * (10 * MiB)
    if where == "header":
        head, rest = b"GET /v1/health HTTP/1.1\r\nhost: tuxai\r\nx-big: ", big + b"\r\n\r\n"
    else:
        head, rest = b"GET /v1/health?", big + b" HTTP/1.1\r\nhost: tuxai\r\n\r\n"
    chunks = (rest[i : i + 65536] for i in range(0, len(rest), 65536))
    status, body = status_and_body(raw_exchange(api.socket_path, head, chunks))
    assert status == 431 and set(body) == {"error", "message", "hint"}
    assert api.daemon.client.health().ok


def test_B4_the_metrics_listener_caps_headers_too(api: Api) -> None:
    host, port = api.metrics_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nhost: tuxai\r\nx-big: " + b"a" * (70 * 2**10))
        status, body = status_and_body(sock.recv(65536))
    assert status == 431 and set(body) == {"error", "message", "hint"}
    assert httpx.get(f"{api.metrics_url}/metrics").status_code == 200


def test_B4_ordinary_headers_still_pass(api: Api) -> None:
    response = api.unix.get("/v1/health", headers={f"x-h{i}": "v" * 400 for i in range(40)})
    assert response.status_code == 200


# ---- A13, B6: one rule for what others see ------------------------------------------------------------

PUBLIC = {"id", "name", "user", "state", "reason", "exit_code", "signal", "held", "priority", "gpus", "gpu_indices"}
PUBLIC |= {"cpus", "node", "submitted_at", "started_at", "ended_at", "waited_s", "ran_s", "flags"}
PUBLIC |= {"standing"}  # the priority terms the scheduler used: sprio shows everyone's
PUBLIC |= {"array_job", "array_index"}  # which array a task is of: squeue shows 12_3 for everyone
PUBLIC |= {"ranks"}  # a Slurm job's nodes and GPUs per rank: squeue shows everyone's node list


def test_A13_one_function_decides_what_others_see_and_a_private_queue_hides_it() -> None:
    job = JobRecord(1, JobSpec(("python", "train.py"), name="train"), "alice", 1000, 1000, JobState.RUNNING, 0.0)
    alice, bob, root = Caller("alice", 1000, 1000), Caller("bob", 1001, 1001), Caller("root", 0, 0, admin=True)
    assert public_fields(job, alice) is None and public_fields(job, root) is None  # everything
    assert public_fields(job, bob) == PUBLIC and {"command", "spec", "log_path", "endpoint"}.isdisjoint(PUBLIC)
    assert public_name(job, bob) == public_name(job) == "train"  # /metrics names it as anyone sees it
    assert public_fields(job, bob, private_queue=True) == frozenset() and shown(job, 0.0, bob, True) is None
    assert public_name(job, private_queue=True) == "" and public_name(job, alice, private_queue=True) == "train"


def test_A13_a_private_queue_daemon_shows_users_only_their_own_jobs() -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: another user (nobody) must reach the daemon's socket")
    base = Path(tempfile.mkdtemp(prefix="tuxai-private-queue-"))
    base.chmod(0o755)
    daemon = DaemonProcess(base / "home", extra=("--private-queue",)).start()
    try:
        mine = daemon.client.submit(shell("sleep 60", name="root-secret-name", gpus=1, grace="1s"))
        deadline = time.monotonic() + 30
        while daemon.job(mine).state != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert as_nobody(daemon.home, "GET", "/v1/jobs") == (200, [])
        assert as_nobody(daemon.home, "GET", f"/v1/jobs/{mine}")[0] == 403
        for path in ("/v1/gpus", "/v1/telemetry", "/metrics"):
            code, text = as_nobody(daemon.home, "GET", path, raw=True)
            assert code == 200 and "root-secret-name" not in str(text), path
        assert [j.name for j in daemon.client.jobs()] == ["root-secret-name"]  # root sees all
        daemon.client.cancel(mine)
    finally:
        finish(daemon)
        shutil.rmtree(base, ignore_errors=True)


def wait_running(api: Api, job_id: int) -> None:
    deadline = time.monotonic() + 30
    while api.daemon.job(job_id).state != "running":
        assert time.monotonic() < deadline, api.daemon.client.job(job_id)
        time.sleep(0.05)


def test_A13_B6_everyone_sees_the_queue_only_owners_see_commands(api: Api) -> None:
    spec = shell("sleep 60 # hunter2", name="root-train", gpus=1, grace="1s", export={"SECRET": "hunter2"})
    mine = api.daemon.client.submit(spec)
    try:
        wait_running(api, mine)
        home = api.daemon.home
        code, listed = as_nobody(home, "GET", "/v1/jobs")
        assert code == 200
        (theirs,) = [j for j in listed if j["id"] == mine]  # type: ignore[union-attr]
        assert set(theirs) == PUBLIC and theirs["name"] == "root-train" and theirs["user"] == "root"
        assert theirs["state"] == "running" and len(theirs["gpu_indices"]) == 1
        code, shown = as_nobody(home, "GET", f"/v1/jobs/{mine}")
        assert code == 200 and set(shown) == PUBLIC  # type: ignore[arg-type]
        code, gpus = as_nobody(home, "GET", "/v1/gpus")
        holders = [h for g in gpus for h in g["holders"] if h["job"] == mine]  # type: ignore[union-attr]
        assert [h["name"] for h in holders] == ["root-train"]
        code, live = as_nobody(home, "GET", "/v1/telemetry")
        holders = [h for g in live["gpus"] for h in g["holders"] if h["job"] == mine]  # type: ignore[index]
        assert [h["name"] for h in holders] == ["root-train"]
        code, metrics = as_nobody(home, "GET", "/metrics", raw=True)
        assert code == 200 and f'job_id="{mine}",user="root",name="root-train"' in str(metrics)
        for path in ("/v1/jobs", f"/v1/jobs/{mine}", "/v1/gpus", "/v1/telemetry", "/metrics"):
            assert "hunter2" not in str(as_nobody(home, "GET", path, raw=True)[1]), path
        # Acting on it, and its output, stay the owner's.
        assert as_nobody(home, "POST", f"/v1/jobs/{mine}/cancel")[0] == 403
        assert as_nobody(home, "GET", f"/v1/jobs/{mine}/log", raw=True)[0] == 403
        # The owner (root) still sees everything.
        full = api.daemon.job(mine)
        assert "hunter2" in " ".join(full.command) and full.spec.exports == (("SECRET", "hunter2"),)
    finally:
        api.daemon.client.cancel(mine)


# ---- A14: users' text reaches a terminal as text -------------------------------------------------------

ESCAPE_NAME = "\x1b]0;pwned\x07"


def tuxai(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, as root would run it."""
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(
        [str(TUXAI), *args, "--home", str(home)], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_A14_names_with_markup_and_terminal_escapes_are_printed_as_text(api: Api) -> None:
    client = api.daemon.client
    markup = client.submit(shell("sleep 60", name="[/bold]", gpu_share=0.5, grace="1s"))
    escape = client.submit(shell("sleep 60 # \x1b[2J", name=ESCAPE_NAME, gpu_share=0.5, grace="1s"))
    try:
        wait_running(api, markup)
        wait_running(api, escape)
        home = api.daemon.home
        for args in (("ls",), ("gpus",), ("top", "--once"), ("show", str(markup)), ("show", str(escape))):
            done = tuxai(home, *args)
            assert done.returncode == 0, (args, done.stderr)
            assert "\x1b]" not in done.stdout and "\x07" not in done.stdout and "\x1b[2J" not in done.stdout, args
            if args[0] != "show" or args[1] == str(markup):
                assert "[/bold]" in done.stdout, (args, done.stdout)
            if args[0] != "show" or args[1] == str(escape):
                assert "\\x1b]0;pwned\\x07" in done.stdout, (args, done.stdout)
        assert "sleep 60 # \\x1b[2J" in tuxai(home, "show", str(escape)).stdout
    finally:
        client.cancel(markup)
        client.cancel(escape)
