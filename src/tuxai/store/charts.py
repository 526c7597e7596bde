"""The dashboard's telemetry charts: GPUs' series over a range from the tier that suits it.

``tier_for`` picks the finest of the 1 s / 1 min / 1 h tiers that still holds the range's start
(``RETENTION_S``) and reads at most ``MAX_ROWS`` rows a GPU; ``series`` reads that tier through the
primary key ``(resolution, gpu, at)`` (a range seek per GPU, never a scan of every sample) and folds
it into at most ``MAX_POINTS`` buckets a GPU.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from tuxai.model.wire_ui import GpuLine, GpuSeries
from tuxai.store.jobs import Store
from tuxai.store.telemetry import RETENTION_S

MAX_POINTS = 600  # a chart's points a GPU: about a point for each two pixels of a 1280 px page's chart
MAX_ROWS = 3600  # rows read a GPU before folding: an hour of seconds, a day of minutes; a week reads hours
TIERS = (1, 60, 3600)
# How long after a bucket ends its tier's rows may still arrive (``SeriesCache``): a second's row is written
# by the step that sampled it, a minute's (an hour's) within a rollup period (60 s) of its end.
SETTLE_S = {1: 15.0, 60: 180.0, 3600: 180.0}
SLACK_S = 60.0  # "the last hour" asked a moment ago still reads the 1 s tier (its first seconds may be pruned)

SERIES_SQL = (
    # Means rounded (0.1 %, a byte, 0.1 W): a chart shows no more, and the page's JSON of 19,200 numbers is
    # written in half the time (53.3 for 53.333333333333336).
    "SELECT gpu, CAST(at / ? AS INTEGER) * ? AS t, ROUND(AVG(util_pct), 1), ROUND(AVG(memory_used)),"
    " ROUND(AVG(power_w), 1) FROM gpu_series"
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


Row = tuple[float, float | None, float | None, float | None]  # a bucket's start and its means


def _read(
    store: Store, gpus: Sequence[int], resolution: int, bucket: int, since: float, until: float
) -> dict[int, list[Row]]:
    """Each GPU's buckets from ``since`` to ``until`` (one range seek a GPU on the primary key)."""
    found: dict[int, list[Row]] = {g: [] for g in gpus}
    if gpus and since < until:
        sql = SERIES_SQL.format(gpus=",".join("?" * len(gpus)))
        with store.db.read() as db:
            rows = db.execute(sql, (bucket, bucket, resolution, *gpus, since, until)).fetchall()
        for gpu, at, util, memory, power in rows:
            found[int(gpu)].append((float(at), util, memory, power))
    return found


def _lines(found: dict[int, list[Row]]) -> tuple[GpuLine, ...]:
    return tuple(GpuLine(gpu, *(zip(*rows, strict=True) if rows else ((), (), (), ()))) for gpu, rows in found.items())


def series(store: Store, gpus: Sequence[int], since: float, until: float, now: float) -> GpuSeries:
    """The telemetry of ``gpus`` from ``since`` to ``until`` (each bucket's mean), from the tier ``tier_for``
    chooses; a GPU with no row in the range has an empty line."""
    resolution, bucket = tier_for(since, until, now)
    return GpuSeries(since, until, resolution, bucket, _lines(_read(store, gpus, resolution, bucket, since, until)))


@dataclass
class _Held:
    """A chart's settled buckets: whole buckets from ``start`` to ``end`` (no row: no sample there)."""

    start: float
    end: float
    rows: dict[int, list[Row]]


class SeriesCache:
    """``series`` that keeps the settled buckets of the charts it read (a page asked again — the Overview's
    last hour, each viewer's reload — reads only the few minutes past them, not the range's 28,800 rows).

    A tier's rows only ever arrive at its recent end (the telemetry step each second, a rollup each minute:
    ``daemon.telemetry.ROLLUP_EVERY_S``), so a bucket that ended ``SETTLE_S[tier]`` ago no longer changes; the
    first bucket of a range, cut by ``since``, is always read again. At most ``KEPT`` charts are held.
    """

    KEPT = 32

    def __init__(self, store: Store) -> None:
        self.store = store
        self._held: OrderedDict[tuple[int, int, tuple[int, ...]], _Held] = OrderedDict()
        self._lock = threading.Lock()

    def series(self, gpus: Sequence[int], since: float, until: float, now: float) -> GpuSeries:
        """As ``series``, from the held buckets and a read of what lies past them."""
        resolution, bucket = tier_for(since, until, now)
        first = math.ceil(since / bucket) * bucket  # the first whole bucket
        settled = max(first, min(until, now - SETTLE_S[resolution]) // bucket * bucket)
        key = (resolution, bucket, tuple(gpus))
        with self._lock:
            held = self._held.get(key)
        if held is None or not held.start <= first <= held.end:
            held = _Held(first, first, {g: [] for g in gpus})
        head = _read(self.store, gpus, resolution, bucket, since, min(first, until))
        tail = _read(self.store, gpus, resolution, bucket, held.end, until)
        kept = {g: [r for r in held.rows[g] if r[0] >= first] for g in gpus}
        for gpu in gpus:
            kept[gpu] += [r for r in tail[gpu] if r[0] + bucket <= settled]
        with self._lock:
            self._held[key] = _Held(first, max(held.end, settled), kept)
            self._held.move_to_end(key)
            while len(self._held) > self.KEPT:
                self._held.popitem(last=False)
        found = {g: head[g] + [r for r in kept[g] if r[0] < until] + [r for r in tail[g] if r[0] + bucket > settled]
                 for g in gpus}  # fmt: skip
        return GpuSeries(since, until, resolution, bucket, _lines(found))
