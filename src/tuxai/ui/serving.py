"""The Serving page: each running job that serves models (``submit --serve``), its endpoint, and per
model version the requests, failures, request rate, latency and queue time its server's ``/metrics``
reports (``serving.metrics``' families, read here as text: the dashboard imports no serving code). Only
the ``tuxai_serve_*`` families with a model and version are read; anything else in the body is ignored.
The drift gauges (``tuxai_serve_drift*``, ``serving.drift_board``) give each version's drift column: the
last closed window's verdict and its worst feature by PSI. Pipelines get their section as they land.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tuxai.model.wire_ui import ModelStats, ServedJob
from tuxai.ui.html import esc, job_link, table

_LINE = re.compile(r"^(tuxai_serve_[a-z_]+)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass
class _Version:
    requests: int = 0
    failures: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    drifted: bool | None = None
    worst: tuple[float, str] | None = None  # (PSI, feature) of the last window's highest PSI
    windows: int = 0


def _labels(text: str) -> dict[str, str]:
    return {k: re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], v) for k, v in _LABEL.findall(text)}


def _p95(buckets: list[tuple[float, float]], count: float) -> float | None:
    """The upper bound of the bucket that holds the 95th percentile (None: no request, or past the last)."""
    for bound, seen in sorted(buckets):
        if count and seen >= 0.95 * count:
            return None if math.isinf(bound) else bound
    return None


def _bound(le: str) -> float:
    """A bucket's upper bound: ``+Inf`` kept, any other not-finite or unreadable bound refused.

    Raises:
        ValueError: not a finite number nor ``+Inf``.
    """
    bound = float(le)
    if math.isnan(bound) or bound == -math.inf:
        raise ValueError(le)
    return bound


def parse_metrics(text: str) -> dict[tuple[str, str], _Version]:
    """A model server's scrape → its numbers per (model, version). Example:
    ``tuxai_serve_requests_total{model="m",version="1",code="200"} 3`` → {("m", "1"): 3 requests}."""
    found: dict[tuple[str, str], _Version] = {}
    for line in text.splitlines():
        matched = _LINE.match(line.strip())
        if matched is None:
            continue
        name, labels, value_text = matched.groups()
        marks = _labels(labels)
        if not marks.get("model") or "version" not in marks:
            continue  # a name the server does not know counts under model="": not a model
        try:
            value = float(value_text)
            bound = _bound(marks.get("le", "+Inf"))
        except ValueError:
            continue
        if not math.isfinite(value):
            continue  # +Inf, NaN: no count, sum or gauge a page can show (T4)
        version = found.setdefault((marks["model"], marks["version"]), _Version())
        if name == "tuxai_serve_requests_total":
            version.requests += int(value)
        elif name.startswith("tuxai_serve_drift"):
            _drift(version, name, marks.get("feature", ""), value)
        elif name == "tuxai_serve_failures_total":
            version.failures += int(value)
        elif name.endswith("_sum"):
            version.sums[name.removesuffix("_sum")] = value
        elif name.endswith("_count"):
            version.counts[name.removesuffix("_count")] = value
        elif name.endswith("_bucket") and "le" in marks:
            version.buckets.setdefault(name.removesuffix("_bucket"), []).append((bound, value))
    return found


def _drift(version: _Version, name: str, feature: str, value: float) -> None:
    """One drift gauge of a version read into it."""
    if name == "tuxai_serve_drift":
        version.drifted = value >= 1
    elif name == "tuxai_serve_drift_psi" and feature and (version.worst is None or value > version.worst[0]):
        version.worst = (value, feature)
    elif name == "tuxai_serve_drift_windows_total":
        version.windows = int(value)


def model_stats(text: str, previous: dict[tuple[str, str], int], elapsed_s: float | None) -> list[ModelStats]:
    """Each model version's ``ModelStats`` from a scrape; the rate from ``previous`` requests counted
    ``elapsed_s`` before (None: no previous look)."""
    stats = []
    for (model, version), v in sorted(parse_metrics(text).items()):
        rate = None
        if elapsed_s and (model, version) in previous:
            rate = max(0, v.requests - previous[(model, version)]) / elapsed_s

        def mean(family: str, v: _Version = v) -> float | None:
            count = v.counts.get(family, 0.0)
            return v.sums[family] / count if count and family in v.sums else None

        def p95(family: str, v: _Version = v) -> float | None:
            return _p95(v.buckets.get(family, []), v.counts.get(family, 0.0))

        latency, queue = "tuxai_serve_request_seconds", "tuxai_serve_queue_seconds"
        psi, feature = v.worst if v.worst is not None else (None, "")
        numbers = (v.requests, v.failures, rate, mean(latency), p95(latency), mean(queue), p95(queue))
        stats.append(ModelStats(model, version, *numbers, v.drifted, feature, psi, v.windows))
    return stats


def _ms(seconds: float | None, bound: bool = False) -> str:
    if seconds is None:
        return "-"
    return f"{'≤ ' if bound else ''}{seconds * 1000:.1f} ms"


def drift_text(m: ModelStats) -> str:
    """A version's drift column: ``drift: x[36] (PSI 0.41)``, ``ok (x[2] PSI 0.03)``, or ``-`` (no reference,
    or its first window still open). Example: drifted, "x", 0.41, 3 windows → "drift: x (PSI 0.41) · 3 windows"."""
    if m.drifted is None:
        return "-"
    worst = f" ({esc(m.drift_feature)} PSI {m.drift_psi:.2f})" if m.drift_psi is not None else ""
    verdict = f'<span class="flag">drift{worst}</span>' if m.drifted else f"ok{worst}"
    return f"{verdict} · {m.drift_windows} window{'s' if m.drift_windows != 1 else ''}"


def serving_page(served: Sequence[ServedJob], admin: bool) -> str:
    """The Serving page's body: a section per serving job, a row per model version."""
    note = "" if admin else "<p class=note>you see the models your own jobs serve; root sees every one</p>"
    if not served:
        return note + '<p class="empty">no job serves a model now (<code>tuxai submit --serve REPO</code>)</p>'
    parts = [note]
    headers = ("model", "version", "requests", "failures", "req/s", "latency", "p95", "queue", "queue p95", "drift")
    for job in served:
        rows = [
            (
                esc(m.model),
                esc(m.version),
                str(m.requests),
                str(m.failures),
                "-" if m.rate_per_s is None else f"{m.rate_per_s:.2f}",
                _ms(m.latency_mean_s),
                _ms(m.latency_p95_s, bound=True),
                _ms(m.queue_mean_s),
                _ms(m.queue_p95_s, bound=True),
                drift_text(m),
            )
            for m in job.models
        ]
        problem = f'<p class="flag">{esc(job.problem)}</p>' if job.problem else ""
        parts.append(
            f"<section class=served><h2>job {job_link(job.job_id)} {esc(job.name)} · {esc(job.user)}</h2>"
            f"<p>endpoint <code>{esc(job.endpoint)}</code></p>{problem}"
            + table(headers, rows, "no request answered yet", "models")
            + "</section>"
        )
    parts.append(
        "<p class=note>drift: the last closed window of the version's inputs against its training data"
        " (a version with a <code>drift-reference.json</code>); pipelines: shown here once they land</p>"
    )
    return "".join(parts)
