"""The dashboard over real HTTP (no browser): login, sessions, CSRF, paging. The browser tier is tests/browser."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon_helpers import REPO, DaemonProcess, finish
from tuxai.errors import UsageError

DGX = REPO / "examples" / "inventories" / "dgx-a100.yaml"


@pytest.fixture
def ui_daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon on the simulated 8-GPU box, listening on TCP too (where the dashboard is)."""
    process = DaemonProcess(tmp_path / "home", DGX, ("--tcp", "127.0.0.1:0")).start()
    try:
        yield process
    finally:
        finish(process)


def _base(url: str) -> str:
    return url.split("/ui/", 1)[0]


@contextlib.contextmanager
def _logged_in(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    url = daemon.client.ui_login().url
    with httpx.Client(base_url=_base(url), timeout=30) as browser:
        assert browser.get(url).status_code == 303
        yield browser


def test_ui_login_is_good_once_and_gives_an_httponly_samesite_cookie(ui_daemon: DaemonProcess) -> None:
    login = ui_daemon.client.ui_login()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/ui/login\?token=[\w-]{40,}", login.url)
    assert 60 <= login.expires_s <= 120
    with httpx.Client(timeout=30) as browser:
        first = browser.get(login.url)
        assert first.status_code == 303 and first.headers["location"] == "/ui/"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback (docs/ui.md)
        with httpx.Client(timeout=30) as other:
            again = other.get(login.url)
        assert again.status_code == 401 and "set-cookie" not in again.headers
        assert browser.get(_base(login.url) + "/ui/").status_code == 200


def test_ui_without_a_session_pages_redirect_to_the_login_help_and_data_is_401(ui_daemon: DaemonProcess) -> None:
    base = _base(ui_daemon.client.ui_login().url)
    with httpx.Client(base_url=base, timeout=30) as browser:
        for path in ("/ui/", "/ui/queue", "/ui/jobs", "/ui/jobs/1"):
            answer = browser.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/ui/howto", path
        assert browser.get("/ui/howto").status_code == 401
        assert browser.get("/ui/events").status_code == 401
        assert browser.post("/ui/jobs/1/cancel", data={"csrf": "x"}).status_code == 401
        browser.cookies.set("tuxai_session", "forged", path="/ui")
        assert browser.get("/ui/").status_code == 303
        token = (ui_daemon.home / "token").read_text().strip()  # the API's bearer is no dashboard login
        assert browser.get("/ui/", headers={"authorization": f"Bearer {token}"}).status_code == 303


def test_ui_login_is_asked_over_the_unix_socket_only(ui_daemon: DaemonProcess) -> None:
    url = ui_daemon.client.ui_login().url
    token = (ui_daemon.home / "token").read_text().strip()
    answer = httpx.post(_base(url) + "/v1/ui/login", headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 403 and answer.json()["error"] == "PermissionDenied"


def test_ui_action_without_the_csrf_token_is_refused_and_the_job_untouched(ui_daemon: DaemonProcess) -> None:
    job = ui_daemon.client.submit({"command": ["sleep", "30"], "grace": "1s"})
    with _logged_in(ui_daemon) as browser:
        assert browser.post(f"/ui/jobs/{job}/cancel", data={"csrf": "guess"}).status_code == 403
        assert ui_daemon.job(job).state.value in ("pending", "running")
        page = browser.get(f"/ui/jobs/{job}").text
        csrf = re.search(r'name=csrf value="([^"]+)"', page)
        assert csrf is not None
        done = browser.post(f"/ui/jobs/{job}/cancel", data={"csrf": csrf.group(1)})
        assert done.status_code == 303
    assert ui_daemon.client.wait(job, timeout_s=30).state.value == "cancelled"


def test_ui_jobs_history_pages_newest_first_with_filters(ui_daemon: DaemonProcess) -> None:
    first = ui_daemon.client.submit({"command": ["true"], "array": "0-59", "hold": True})
    held = list(range(first, first + 60))
    with _logged_in(ui_daemon) as browser:
        page = browser.get("/ui/jobs").text
        ids = [int(i) for i in re.findall(r'<a href="/ui/jobs/(\d+)">', page)]
        assert ids == held[::-1][:50]
        older = re.search(r'<a rel=next href="([^"]+)"', page)
        assert older is not None
        rest = browser.get(older.group(1).replace("&amp;", "&")).text
        assert [int(i) for i in re.findall(r'<a href="/ui/jobs/(\d+)">', rest)] == held[::-1][50:]
        none = browser.get("/ui/jobs", params={"state": "running"}).text
        assert "no job matches" in none
        assert browser.get("/ui/jobs", params={"user": "nobody-here"}).text.count("/ui/jobs/") == 0
        assert browser.get("/ui/jobs", params={"state": "bogus"}).status_code == 400


def test_tuxai_ui_without_a_tcp_listener_is_one_clear_line(daemon: DaemonProcess) -> None:
    with pytest.raises(UsageError):
        daemon.client.ui_login()
    done = subprocess.run(
        [sys.executable, "-m", "tuxai", "ui", "--no-open", "--home", str(daemon.home)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "--tcp" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_ui_events_first_give_the_state_of_each_job_on_the_page(ui_daemon: DaemonProcess) -> None:
    """A job that ended between the page and its event stream (the cancel of the browser tier, once)
    still changes on the page: the stream starts with the states of the page's jobs."""
    job = ui_daemon.client.submit({"command": ["true"]})
    ui_daemon.wait_all([job])  # ended before the stream opens: no change is left to see
    with (
        _logged_in(ui_daemon) as browser,
        browser.stream("GET", "/ui/events", params={"ids": f"{job},x,"}, timeout=10) as events,
    ):
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        while next(lines) != "event: job":  # a stream that says nothing fails by the read timeout
            pass
        assert json.loads(next(lines).removeprefix("data: ")) == {"id": job, "state": "succeeded"}


def _raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` byte for byte (no client normalises its dots), no credential: the status and the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def test_ui_paths_let_through_without_the_bearer_reach_no_api_route(ui_daemon: DaemonProcess) -> None:
    base = _base(ui_daemon.client.ui_login().url)
    for path in ("/ui/../v1/jobs", "/ui/%2e%2e/v1/jobs", "/ui//v1/health", "/ui/static/../../v1/health"):
        status, answer = _raw_get(base, path)
        assert status in (303, 401, 404), (path, status)
        assert b'"pid"' not in answer and b'"id"' not in answer, path
    assert _raw_get(base, "/ui/static/ui.css")[0] == 200  # what the login page needs, without a session
    assert _raw_get(base, "/ui/static/token")[0] == 404


def test_ui_an_open_event_stream_ends_with_the_daemon_not_cut_after_its_grace(ui_daemon: DaemonProcess) -> None:
    """``tuxai down`` with a dashboard open: the stream ends in order within a second or two (before:
    uvicorn waited out its 5 s grace, then cut the connection mid-body)."""
    with (
        _logged_in(ui_daemon) as browser,
        browser.stream("GET", "/ui/events", params={"gpus": 1}, timeout=20) as events,
    ):
        lines = events.iter_lines()
        while next(lines) != "event: gpus":
            pass
        ui_daemon.client.shutdown()
        asked = time.monotonic()
        for _ in lines:  # to the end of the body: a cut connection raises here
            pass
        assert time.monotonic() - asked < 4.5
    assert ui_daemon.process is not None and ui_daemon.process.wait(timeout=30) == 0


def test_tuxai_ui_prints_a_link_that_logs_in_once(ui_daemon: DaemonProcess) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tuxai", "ui", "--no-open", "--home", str(ui_daemon.home)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    url, note = done.stdout.strip().splitlines()
    assert "good once" in note
    with httpx.Client(timeout=30) as browser:
        assert browser.get(url).status_code == 303
        assert browser.get(url).status_code == 401
