"""The dashboard's chart series (``store.charts``) on a real SQLite store: the tier a range reads, the
buckets' means, and a query plan that seeks the primary key instead of scanning every sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.store.charts import MAX_POINTS, SERIES_SQL, series, tier_for
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
