"""The telemetry charts of the Overview and Job pages, as HTML: the range links, a summary table that
reads without JavaScript (each GPU's mean utilization, peak memory, mean power over the range), and the
series as a JSON block that ``charts.js`` draws with uPlot (built from npm at packaging time, served from
``static/dist``; a tree without the build shows the table alone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from urllib.parse import urlencode

from tuxai.model.wire_gpus import LiveView
from tuxai.model.wire_ui import GpuLine, GpuSeries
from tuxai.ui.html import esc, size, span, table

RANGES_S = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
DEFAULT_RANGE = "15m"  # the 1 s tier, 7,200 rows for 8 GPUs (bench/ui.py)
METRICS = (("util_pct", "utilization", "%"), ("memory_used_bytes", "memory", "GiB"), ("power_w", "power", "W"))
TIER_NAMES = {1: "1 s", 60: "1 min", 3600: "1 h"}


def built() -> bool:
    """Whether the chart library was built into the package (``make ui-assets``)."""
    return resources.files("tuxai.ui").joinpath("static", "dist", "uplot.js").is_file()


def range_links(path: str, chosen: str, extra: dict[str, str] | None = None, names: Iterable[str] = RANGES_S) -> str:
    """Links to the same page over each range of ``names`` (plain links: no script needed)."""
    links = []
    for name in names:
        href = esc(path + "?" + urlencode({**(extra or {}), "range": name}))
        current = " aria-current=true" if name == chosen else ""
        links.append(f'<a href="{href}"{current}>{name}</a>')
    return '<nav class="ranges" aria-label="range">' + "".join(links) + "</nav>"


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _peak(values: Sequence[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)


def _summary(line: GpuLine) -> tuple[str, str, str, str, str]:
    util, power, memory = _mean(line.util_pct), _mean(line.power_w), _peak(line.memory_used_bytes)
    return (
        f"GPU {line.gpu}",
        "-" if util is None else f"{util:.0f} %",
        "-" if memory is None else size(int(memory)),
        "-" if power is None else f"{power:.0f} W",
        str(len(line.at)),
    )


def figures(payload: Mapping[str, object], shown: Sequence[tuple[str, str, str]]) -> str:
    """Chart figures drawn by ``charts.js`` from ``payload`` (``labels``: a name a line; ``at``: each line's
    times; one list a line under each key of ``shown``, as (key, label, unit)); "" when the chart library
    was not built (the page's tables say the same)."""
    if not built():
        return ""
    data = json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c")  # nothing can close the block
    return (
        '<link rel=stylesheet href="/ui/static/uplot.css">'
        f'<script type="application/json" id="chart-data">{data}</script>'
        + "".join(
            f'<figure class="chart" data-chart="{esc(key)}" data-unit="{esc(unit)}"><figcaption>{esc(label)}'
            f" ({esc(unit)})</figcaption></figure>"
            for key, label, unit in shown
        )
        + '<script src="/ui/static/uplot.js" defer></script><script src="/ui/static/charts.js" defer></script>'
    )


def live_samples(live: LiveView) -> dict[str, object]:
    """Each GPU's latest sample as the live charts append it (the live events' ``sample``):
    ``{"gpus": {index: [at, util, memory, power]}}``."""
    return {"gpus": {g.index: [g.at, g.util_pct, g.memory_used_bytes, g.power_w] for g in live.gpus}}


def _payload(series: GpuSeries, live: bool, grow: bool) -> dict[str, object]:
    return {
        "live": live,
        "span": 0 if grow else series.until - series.since,  # 0: a running job's chart keeps its whole run
        "gpus": [line.gpu for line in series.lines],
        "labels": [f"GPU {line.gpu}" for line in series.lines],
        "at": [list(line.at) for line in series.lines],
        **{key: [list(getattr(line, key)) for line in series.lines] for key, _, _ in METRICS},
    }


def charts(series: GpuSeries, heading: str, live: bool = False, grow: bool = False) -> str:
    """The charts block: a heading naming the tier read, the summary table, the chart figures and data;
    ``live``: the charts append the live events' samples and let go of what falls out of the range (the
    Overview's recent ranges); ``grow``: they append them and keep every point (a running job's page)."""
    tier = TIER_NAMES.get(series.resolution_s, f"{series.resolution_s} s")
    every = "" if series.bucket_s == series.resolution_s else f", a point every {span(series.bucket_s)}"
    rows = [_summary(line) for line in series.lines]
    summary = table(("GPU", "mean util", "peak memory", "mean power", "points"), rows, "no GPU", "chart-summary")
    marked = " data-live-chart" if live or grow else ""  # ui.js asks the live events for samples
    parts = [
        f'<section class="charts"{marked}><h2>{esc(heading)}</h2>',
        f"<p class=note>from the {tier} tier{esc(every)}</p>",
    ]
    if not any(line.at for line in series.lines):
        parts.append('<p class="empty">no telemetry in this range</p>')
    else:
        parts.append(summary + figures(_payload(series, live or grow, grow), METRICS))
    return "".join(parts) + "</section>"
