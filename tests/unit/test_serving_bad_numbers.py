"""T4: a model server's ``+Inf``/``NaN`` (or an unreadable bucket bound) in its ``/metrics`` never fails root's
Serving page: not-finite values are skipped, a ``le="+Inf"`` bucket bound is kept, and one server's numbers
that still cannot be read become that server's problem line."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tuxai.api.ui_serving import ServedReader
from tuxai.ui.serving import model_stats, serving_page

BAD = (
    'tuxai_serve_requests_total{model="m",version="1",code="200"} +Inf\n'
    'tuxai_serve_requests_total{model="m",version="1",code="500"} NaN\n'
    'tuxai_serve_failures_total{model="m",version="1"} -Inf\n'
    'tuxai_serve_drift_windows_total{model="m",version="1"} NaN\n'
    'tuxai_serve_request_seconds_bucket{model="m",version="1",le="0.005"} 3\n'
    'tuxai_serve_request_seconds_bucket{model="m",version="1",le="+Inf"} 4\n'
    'tuxai_serve_request_seconds_bucket{model="m",version="1",le="soon"} 4\n'
    'tuxai_serve_request_seconds_sum{model="m",version="1"} NaN\n'
    'tuxai_serve_request_seconds_count{model="m",version="1"} 4\n'
    'tuxai_serve_requests_total{model="m",version="1",code="200"} 4\n'
)
GOOD = 'tuxai_serve_requests_total{model="ok",version="2",code="200"} 7\n'


@pytest.fixture
def servers() -> Iterator[list[str]]:
    """Two model servers on 127.0.0.1: one answers BAD, the other GOOD."""
    started = []
    for body in (BAD, GOOD):

        class Metrics(BaseHTTPRequestHandler):
            text = body.encode()

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(self.text)))
                self.end_headers()
                self.wfile.write(self.text)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in started]
    for server in started:
        server.shutdown()
        server.server_close()


def test_T4_not_finite_values_are_skipped_and_the_inf_bucket_kept() -> None:
    (m,) = model_stats(BAD, {}, None)
    assert (m.requests, m.failures, m.drift_windows) == (4, 0, 0)
    assert m.latency_p95_s is None  # the 95th percentile is in the +Inf bucket: past the last bound
    assert m.latency_mean_s is None  # its sum was NaN: no mean


def test_T4_one_servers_bad_numbers_never_fail_roots_serving_page(servers: list[str]) -> None:
    targets = [(1, "bad", "mallory", servers[0]), (2, "good", "ada", servers[1])]
    read = ServedReader(None).read_many(targets)  # type: ignore[arg-type]  # the daemon: for served() only
    assert [j.job_id for j in read] == [1, 2]
    assert read[1].models[0].requests == 7 and read[1].problem == ""
    html = serving_page(read, admin=True)
    assert "mallory" in html and "ada" in html
