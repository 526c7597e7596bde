"""The Serving page's numbers read from a real model server's ``/metrics`` text (``serving.metrics``
renders it; ``ui.serving`` reads it back), and the loopback rule of the daemon's scrape."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from tuxai.api.ui_serving import MAX_SERVED, SCRAPE_TIMEOUT_S, ServedReader, loopback
from tuxai.model.wire_ui import ServedJob
from tuxai.serving.drift import Reference, Window
from tuxai.serving.drift_board import DriftBoard
from tuxai.serving.metrics import Metrics
from tuxai.ui.serving import drift_text, model_stats, serving_page


def _scrape() -> str:
    metrics = Metrics()
    for seconds in [0.002] * 19 + [0.2]:
        metrics.request("mlp", "1", 200, seconds)
    metrics.request("mlp", "1", 400, 0.001)
    metrics.request('we"ird\nname', "2", 200, 0.01)
    metrics.request("", "", 404, 0.0001)  # an unknown name: not a model
    metrics.response("infer", 200)
    return metrics.render()


def test_each_model_version_gets_its_requests_failures_and_latency() -> None:
    stats = {(m.model, m.version): m for m in model_stats(_scrape(), {}, None)}
    assert set(stats) == {("mlp", "1"), ('we"ird\nname', "2")}  # label escapes read back
    mlp = stats[("mlp", "1")]
    assert (mlp.requests, mlp.failures, mlp.rate_per_s) == (21, 1, None)
    assert mlp.latency_mean_s is not None and abs(mlp.latency_mean_s - (19 * 0.002 + 0.2 + 0.001) / 21) < 1e-9
    assert mlp.latency_p95_s == 0.0025  # 20 of 21 at or under 2.5 ms
    assert mlp.queue_mean_s is None  # no batch ran: no queue time


def test_the_rate_is_the_requests_since_the_previous_look() -> None:
    (mlp, *_) = model_stats(_scrape(), {("mlp", "1"): 11}, 5.0)
    assert mlp.rate_per_s == 2.0


def test_the_page_escapes_names_and_says_what_a_user_sees() -> None:
    stats = tuple(model_stats(_scrape(), {}, None))
    html = serving_page([ServedJob(7, "<b>", "ada", "http://127.0.0.1:1", stats)], admin=False)
    assert "&lt;b&gt;" in html and "<b>" not in html and "we&quot;ird" in html
    assert "your own jobs serve" in html and "≤ 2.5 ms" in html
    assert "no job serves a model now" in serving_page([], admin=True)


def test_the_daemon_scrapes_loopback_endpoints_only() -> None:
    assert loopback("http://127.0.0.1:8000") and loopback("http://[::1]:80/") and loopback("http://localhost:9")
    assert not loopback("http://10.0.0.1:80") and not loopback("http://example.com/") and not loopback("file:///etc")
    assert not loopback("http://127.0.0.1.evil.com/") and not loopback("http://[::1")


def test_a_jobs_endpoint_cannot_choose_the_path_roots_request_asks_for() -> None:
    for url in ("http://127.0.0.1:9/admin/delete?all=", "http://127.0.0.1:9/x", "http://u:p@127.0.0.1:9",
                "http://127.0.0.1:9#frag", "http://127.0.0.1:9/?q=1"):  # fmt: skip
        assert not loopback(url), url
    assert loopback("http://127.0.0.1:9/")


def test_servers_that_never_answer_cost_a_page_one_timeout_not_one_each() -> None:
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(4)]  # they accept, never answer
    try:
        targets = [(i, "m", "ada", f"http://127.0.0.1:{s.getsockname()[1]}") for i, s in enumerate(listeners)]
        started = time.monotonic()
        read = ServedReader(None).read_many(targets)  # type: ignore[arg-type]  (the daemon: for served() only)
        took = time.monotonic() - started
    finally:
        for listener in listeners:
            listener.close()
    assert [r.job_id for r in read] == [0, 1, 2, 3]
    assert all(r.problem.startswith("its /metrics did not answer") for r in read), read
    assert took < 3 * SCRAPE_TIMEOUT_S, took  # four timeouts one after another would take 4 s


class Trickle:
    """An HTTP server on 127.0.0.1 (a thread a connection) that answers one byte every ``every_s`` — under
    the read timeout, so no single read ever times out: the head too when ``head`` is True, else the head
    at once and then a body (1 MB announced) that never comes faster."""

    HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n"

    def __init__(self, head: bool, every_s: float = 0.2) -> None:
        self.head, self.every_s = head, every_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)  # the request
            if not self.head:
                connection.sendall(self.HEAD)
            out = self.HEAD if self.head else b"#" * 1_000_000
            for byte in out:
                if self.done.wait(self.every_s):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return  # the client went

    def close(self) -> None:
        """Stop answering: every connection ends."""
        self.done.set()
        self.listener.close()


def test_S5_servers_that_trickle_a_byte_under_the_read_timeout_are_cut_at_one_deadline() -> None:
    servers = [Trickle(head=True), Trickle(head=False)]
    targets = [(i, "m", "ada", servers[i % 2].url) for i in range(MAX_SERVED)]  # a full page of them
    read: list[ServedJob] = []
    started = time.monotonic()
    page = threading.Thread(target=lambda: read.extend(ServedReader(None).read_many(targets)), daemon=True)  # type: ignore[arg-type]
    page.start()
    try:
        page.join(timeout=3 * SCRAPE_TIMEOUT_S)  # before: the page waited for the last byte (hours)
        took = time.monotonic() - started
    finally:
        for server in servers:
            server.close()
    assert not page.is_alive(), f"the page still waits after {took:.1f} s"
    assert took < 2 * SCRAPE_TIMEOUT_S, took  # every server at once, each cut at its deadline
    assert [r.job_id for r in read] == list(range(MAX_SERVED))
    assert all(r.problem == f"its /metrics did not answer within {SCRAPE_TIMEOUT_S:g} s" for r in read), read


def _drift_scrape() -> str:
    """A real server's scrape with drift gauges: version 2 of "digits" drifted on x, version 1 did not,
    "mlp" carries no reference (``serving.drift_board`` writes the gauges)."""
    reference = Reference.from_columns({"x": np.arange(1000.0), "y": np.arange(1000.0)})
    board = DriftBoard()
    for number, shift in ((1, 0.0), (2, 800.0)):
        window = Window(reference, rows=500)
        for _ in range(2):
            window.add({"x": np.arange(500.0) * 2 + shift, "y": np.arange(500.0) * 2})
        board._windows[("digits", number)] = (None, window)  # as a version's first request would make it
        board.closed[("digits", number)] = 2
    metrics = Metrics()
    for number in ("1", "2"):
        metrics.request("digits", number, 200, 0.002)
    return metrics.render() + board.text()


def test_E18_5_serving_shows_each_versions_drift_from_the_servers_gauges() -> None:
    stats = {(m.model, m.version): m for m in model_stats(_drift_scrape(), {}, None)}
    drifted, steady = stats[("digits", "2")], stats[("digits", "1")]
    assert (drifted.drifted, drifted.drift_feature, drifted.drift_windows) == (True, "x", 2)
    assert drifted.drift_psi is not None and drifted.drift_psi >= 0.25  # the drift threshold (serving.drift)
    assert steady.drifted is False and steady.drift_psi is not None and steady.drift_psi < 0.1
    html = serving_page([ServedJob(7, "s", "ada", "http://127.0.0.1:1", tuple(stats.values()))], admin=True)
    assert f'<span class="flag">drift (x PSI {drifted.drift_psi:.2f})</span> · 2 windows' in html
    assert "<th>drift</th>" in html and "ok (" in html
    (mlp, *_) = model_stats(_scrape(), {}, None)
    assert mlp.drifted is None and drift_text(mlp) == "-"  # no reference: no drift column to fill
