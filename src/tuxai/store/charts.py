"""The dashboard's telemetry charts: GPUs' series over a range from the tier that suits it.

``tier_for`` picks the finest of the 1 s / 1 min / 1 h tiers that still holds the range's start
(``RETENTION_S``) and reads at most ``MAX_ROWS`` rows a GPU; ``series`` reads that tier through the
primary key ``(resolution, gpu, at)`` (a range seek per GPU, never a scan of every sample) and folds
it into at most ``MAX_POINTS`` buckets a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tuxai.model.wire_ui import GpuLine, GpuSeries
from tuxai.store.jobs import Store
from tuxai.store.telemetry import RETENTION_S

MAX_POINTS = 600  # a chart's points a GPU: about a point for each two pixels of a 1280 px page's chart
MAX_ROWS = 3600  # rows read a GPU before folding: an hour of seconds, a day of minutes; a week reads hours
TIERS = (1, 60, 3600)
SLACK_S = 60.0  # "the last hour" asked a moment ago still reads the 1 s tier (its first seconds may be pruned)

SERIES_SQL = (
    "SELECT gpu, CAST(at / ? AS INTEGER) * ? AS t, AVG(util_pct), AVG(memory_used), AVG(power_w) FROM gpu_series"
    " WHERE resolution=? AND gpu IN ({gpus}) AND at >= ? AND at < ? GROUP BY gpu, t ORDER BY gpu, t"
)


def tier_for(since: float, until: float, now: float) -> tuple[int, int]:
    """The tier (its resolution in seconds) and the bucket (a multiple of it) for a chart from ``since`` to
    ``until`` at ``now``: the finest tier that still keeps ``since`` with at most ``MAX_ROWS`` rows, else the
    1 h tier. Example: the last 15 minutes → (1, 1); the last day → (60, 60); the last year → (3600, 21600)."""
    span = max(1.0, until - since)
    resolution = next((r for r in TIERS if since + SLACK_S >= now - RETENTION_S[r] and span / r <= MAX_ROWS), TIERS[-1])
    bucket = resolution * max(1, math.ceil(span / resolution / MAX_POINTS))
    return resolution, bucket


def series(store: Store, gpus: Sequence[int], since: float, until: float, now: float) -> GpuSeries:
    """The telemetry of ``gpus`` from ``since`` to ``until`` (each bucket's mean), from the tier ``tier_for``
    chooses; a GPU with no row in the range has an empty line."""
    resolution, bucket = tier_for(since, until, now)
    found: dict[int, list[tuple[float, float | None, float | None, float | None]]] = {g: [] for g in gpus}
    if gpus:
        sql = SERIES_SQL.format(gpus=",".join("?" * len(gpus)))
        with store.db.read() as db:
            rows = db.execute(sql, (bucket, bucket, resolution, *gpus, since, until)).fetchall()
        for gpu, at, util, memory, power in rows:
            found[int(gpu)].append((float(at), util, memory, power))
    lines = tuple(
        GpuLine(
            gpu,
            tuple(r[0] for r in rows),
            tuple(r[1] for r in rows),
            tuple(r[2] for r in rows),
            tuple(r[3] for r in rows),
        )
        for gpu, rows in found.items()
    )
    return GpuSeries(since, until, resolution, bucket, lines)
