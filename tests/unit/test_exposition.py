"""The one Prometheus text writer (model/exposition.py) and what each server writes with it."""

from __future__ import annotations

import math

from tuxai.errors import (
    InferenceInputError,
    ModelNotFound,
    ModelNotReady,
    ModelOverloaded,
    RequestTooLarge,
    UsageError,
)
from tuxai.model.exposition import Exposition, Histogram, label_value, labels, number, sample
from tuxai.serving.app import wire_status
from tuxai.serving.metrics import Metrics
from tuxai.telemetry.prometheus import JobRow, MetricsView, render

NAME = 'a"b\\c\nd'  # every character the text format escapes


def test_label_values_escape_quote_backslash_and_newline() -> None:
    assert label_value(NAME) == 'a\\"b\\\\c\\nd'
    assert labels(model=NAME, version=1) == 'model="a\\"b\\\\c\\nd",version="1"'
    assert sample("m", "", 1.0) == "m 1" and sample("m", labels(x="y"), 2) == 'm{x="y"} 2'


def test_numbers_are_exact_and_special_values_are_prometheus_words() -> None:
    assert [number(v) for v in (97.0, 0.25, 12500.0, 2**53 + 0.0)] == ["97", "0.25", "12500", "9007199254740992"]
    assert number(0.1 + 0.2) == "0.30000000000000004"  # not rounded to 10 digits as before
    assert (number(math.inf), number(-math.inf), number(math.nan)) == ("+Inf", "-Inf", "NaN")


def test_histogram_is_cumulative_and_families_without_rows_are_left_out() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.5, 5.0):
        histogram.observe(value)
    out = Exposition()
    out.family("empty_total", "counter", "nothing", [])
    out.histograms("h", "line one\nline \\ two", [(labels(m="x"), histogram)])
    assert out.text().splitlines() == [
        "# HELP h line one\\nline \\\\ two",
        "# TYPE h histogram",
        'h_bucket{m="x",le="0.1"} 1',
        'h_bucket{m="x",le="1"} 2',
        'h_bucket{m="x",le="+Inf"} 3',
        'h_sum{m="x"} 5.55',
        'h_count{m="x"} 3',
    ]
    assert Exposition().text() == ""


def test_both_servers_write_a_hostile_name_as_one_label_value() -> None:
    metrics = Metrics()
    metrics.request(NAME, "1", 200, 0.001)
    served = metrics.render()
    assert 'tuxai_serve_requests_total{model="a\\"b\\\\c\\nd",version="1",code="200"} 1' in served
    view = MetricsView("box", [], {}, [JobRow(7, "ada", NAME, (0,))], {}, {}, {}, {"running": 1})
    daemon = render(view)
    assert 'tuxai_job_running{job_id="7",user="ada",name="a\\"b\\\\c\\nd"} 1' in daemon
    for text in (served, daemon):
        assert all(line.startswith(("# ", "tuxai_")) for line in text.splitlines())


def test_model_server_errors_map_to_kserve_statuses() -> None:
    assert wire_status(InferenceInputError("bad")) == (400, [])
    assert wire_status(UsageError("no model 'x' in the repository")) == (400, [])
    assert wire_status(RequestTooLarge("big")) == (413, [(b"connection", b"close")])
    assert wire_status(ModelNotFound("x", None, ["mlp"])) == (404, [])
    not_ready = ModelNotReady("x", None, [(1, "UNAVAILABLE", "cannot load")])
    assert str(not_ready) == "model 'x' is not ready (version 1: UNAVAILABLE cannot load)"
    assert wire_status(not_ready) == (503, [(b"retry-after", b"1")])
    assert wire_status(ModelOverloaded("full")) == (503, [(b"retry-after", b"1")])
