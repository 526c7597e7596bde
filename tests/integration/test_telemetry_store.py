"""Telemetry in SQLite: rollups keep every tier right, pruning keeps the file bounded over a month."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.store import Store
from tuxai.store.telemetry import SampleRow, TelemetryStore

DAY = 86400.0


def _feed(series: TelemetryStore, start: float, end: float, step: float, gpus: int = 2) -> None:
    """Samples every ``step`` seconds (util 50 %, 100 W, so each carries 100 W × step joules)."""
    at = start
    while at < end:
        batch = []
        stop = min(end, at + 3600.0)
        while at < stop:
            batch += [SampleRow(g, at, 50.0, 2.0**30, 100.0, 100.0 * step, 60.0) for g in range(gpus)]
            at += step
        series.add_samples(batch)
        series.rollup(at)
        series.prune(at)


def test_rollups_average_and_sum(tmp_path: Path) -> None:
    series = TelemetryStore(Store(tmp_path / "tuxai.db"))
    _feed(series, 0.0, 7200.0, 1.0, gpus=1)
    minutes = series.series(0, 60, 0.0)
    hours = series.series(0, 3600, 0.0)
    assert [m["at"] for m in minutes] == [60.0 * i for i in range(120)]  # the 1 s rows are pruned, not these
    assert minutes[0]["energy_j"] == pytest.approx(6000.0) and minutes[0]["util_pct"] == 50.0
    assert [h["at"] for h in hours] == [0.0, 3600.0] and hours[0]["energy_j"] == pytest.approx(360000.0)
    assert series.counts()[1] <= 3600


def test_a_month_of_samples_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "tuxai.db"
    store = Store(path)
    series = TelemetryStore(store)
    sizes = {}
    for day in range(31):
        _feed(series, day * DAY, (day + 1) * DAY, 20.0)
        if day in (8, 30):
            sizes[day] = series.counts()
    week_rows = sizes[8][60]
    assert sizes[30][1] <= 2 * 3600 / 20 + 2  # an hour of raw rows for 2 GPUs
    assert sizes[30][60] == week_rows == 2 * 7 * 24 * 60  # a week of minutes
    assert sizes[30][3600] == 2 * 31 * 24  # hours grow only by 48 a day, for a year
    store.close()
    bytes_after_month = path.stat().st_size
    assert bytes_after_month < 20 * 2**20, bytes_after_month
