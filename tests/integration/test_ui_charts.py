"""The dashboard's chart series (``store.charts``) on a real SQLite store: the tier a range reads, the
buckets' means, and a query plan that seeks the primary key instead of scanning every sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.store.charts import MAX_POINTS, SERIES_SQL, SeriesCache, series, tier_for
from tuxai.store.jobs import Store
from tuxai.store.telemetry import SampleRow, TelemetryStore

NOW = 1_800_000_000.0
HOUR, DAY = 3600.0, 86400.0


@pytest.mark.parametrize(
    ("back_s", "expected"),
    [
        (15 * 60, (1, 2)),  # the 1 s tier keeps the last hour
        (HOUR, (1, 6)),  # 3,600 rows folded into 600 points
        (DAY, (60, 180)),  # past the hour: minutes
        (7 * DAY, (3600, 3600)),  # a week of minutes is too many rows: hours
        (30 * DAY, (3600, 7200)),
        (365 * DAY, (3600, 54000)),  # a year: hours folded by 15
    ],
)
def test_a_range_reads_the_finest_tier_that_still_holds_its_start(back_s: float, expected: tuple[int, int]) -> None:
    resolution, bucket = tier_for(NOW - back_s, NOW, NOW)
    assert (resolution, bucket) == expected
    assert back_s / bucket <= MAX_POINTS


def test_an_old_job_reads_hours_even_when_it_ran_ten_minutes() -> None:
    assert tier_for(NOW - 30 * DAY, NOW - 30 * DAY + 600, NOW) == (3600, 3600)  # minutes are gone by then
    assert tier_for(NOW - 2 * DAY, NOW - 2 * DAY + 600, NOW) == (60, 60)


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "tuxai.db")
    telemetry = TelemetryStore(store)
    rows = [SampleRow(gpu, NOW - 100 + i, 10.0 * gpu + i % 2 * 10, 2.0**30, 100.0 + i, 1.0, 40.0)
            for gpu in (0, 1, 2) for i in range(100)]  # fmt: skip
    telemetry.add_samples(rows)
    return store


def test_series_gives_each_gpu_its_bucket_means(tmp_path: Path) -> None:
    store = _store(tmp_path)
    got = series(store, [0, 2], NOW - 100, NOW, NOW)
    assert (got.resolution_s, got.bucket_s) == (1, 1)
    assert [line.gpu for line in got.lines] == [0, 2]
    zero = got.lines[0]
    assert len(zero.at) == 100 and zero.at[0] == NOW - 100 and zero.util_pct[:2] == (0.0, 10.0)
    assert got.lines[1].util_pct[0] == 20.0 and got.lines[1].memory_used_bytes[0] == 2.0**30
    assert series(store, [5], NOW - 100, NOW, NOW).lines[0].at == ()  # a GPU with no sample: an empty line


def test_the_series_query_seeks_the_primary_key_and_never_scans(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sql = "EXPLAIN QUERY PLAN " + SERIES_SQL.format(gpus="?,?")
    with store.db.read() as db:
        plan = " | ".join(str(row[3]) for row in db.execute(sql, (1, 1, 1, 0, 2, NOW - 100, NOW)).fetchall())
    assert "SEARCH gpu_series USING PRIMARY KEY (resolution=? AND gpu=? AND at>? AND at<?)" in plan, plan
    assert "SCAN gpu_series" not in plan, plan


def test_the_last_hour_asked_a_moment_ago_still_reads_the_seconds() -> None:
    assert tier_for(NOW - HOUR, NOW, NOW + 0.5) == (1, 6)  # the page's clock read before the query's


def test_E18_4_a_chart_asked_again_reads_only_past_its_settled_buckets_and_equals_a_fresh_read(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "tuxai.db")
    telemetry = TelemetryStore(store)
    start = NOW - HOUR
    telemetry.add_samples([SampleRow(g, start + i, float(i % 7), 2.0**30 + i, 50.0, 1.0, 40.0)
                           for g in (0, 1) for i in range(int(HOUR))])  # fmt: skip
    cache = SeriesCache(store)
    for moment in range(0, 60, 7):  # the Overview's last hour, reloaded as seconds go by and samples arrive
        now = NOW + moment
        telemetry.add_samples([SampleRow(g, now - 1 - i, float(i % 5), 2.0**30, 60.0, 1.0, 40.0)
                               for g in (0, 1) for i in range(7)])  # fmt: skip
        assert cache.series([0, 1], now - HOUR, now, now) == series(store, [0, 1], now - HOUR, now, now), moment
    with store.db.write() as db:  # a settled second changed behind the cache: it is not read again
        db.execute("UPDATE gpu_series SET util_pct=99 WHERE resolution=1 AND at >= ? AND at < ?",
                   (NOW - 1800, NOW - 1794))  # fmt: skip
    now = NOW + 60
    held, fresh = cache.series([0, 1], now - HOUR, now, now), series(store, [0, 1], now - HOUR, now, now)
    assert held != fresh and 99.0 in fresh.lines[0].util_pct and 99.0 not in held.lines[0].util_pct
    # The last minutes (newer than SETTLE_S) are read each time: the cache never holds what may still change.
    assert (
        held.lines[0].at[-30:] == fresh.lines[0].at[-30:]
        and held.lines[0].util_pct[-30:] == fresh.lines[0].util_pct[-30:]
    )


def test_E18_4_bucket_means_are_rounded_to_what_a_chart_shows(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuxai.db")
    TelemetryStore(store).add_samples([SampleRow(0, NOW - 3 + i, float(i == 2), 2.0**30 + i, 100.0 + i / 3, 1.0, 40.0)
                                       for i in range(3)])  # fmt: skip
    got = series(store, [0], NOW - 1800, NOW, NOW)  # 3 s buckets: the three samples in one
    assert got.bucket_s == 3 and got.lines[0].util_pct == (0.3,) and got.lines[0].power_w == (100.3,)
    assert got.lines[0].memory_used_bytes == (2.0**30 + 1,)
