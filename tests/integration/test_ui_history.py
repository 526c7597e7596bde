"""The Jobs page's time filter on a real store: a date becomes an id boundary by a binary search on the
primary key (ids are handed out in submission order), forgotten ids and all; the page reads that range."""

from __future__ import annotations

import time
from pathlib import Path

from tuxai.model.job import JobSpec
from tuxai.model.resources import Request
from tuxai.store import Store
from tuxai.store.history import first_submitted, page
from tuxai.ui.routes import day_bounds

SPEC = JobSpec(command=("true",), name="t", request=Request())


def test_a_time_filter_finds_the_first_job_of_a_time_across_forgotten_ids(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuxai.db")
    ids = [store.submit(SPEC, ("ada", 1000, 1000, (1000,)), {}, now=100.0 * i) for i in range(1, 41)]
    store.forget(ids[10:25])  # submitted at 1,100 … 2,500: gone, their ids never handed out again
    statements: list[str] = []
    with store.db.read() as db:
        db.set_trace_callback(statements.append)
    assert first_submitted(store, 0.0) == ids[0]
    assert first_submitted(store, 350.0) == ids[3]  # submitted at 400
    assert ids[9] < first_submitted(store, 1050.0) <= ids[25]  # in the gap: the next job is the one at 2,600
    assert first_submitted(store, 1e9) == ids[-1] + 1  # none: past the newest
    assert len(statements) < 4 * 9  # four searches of about log2(40) point reads each, never a scan
    assert [j.id for j in page(store, before=first_submitted(store, 3050.0), after=first_submitted(store, 250.0))] == [
        *reversed(ids[25:30]), *reversed(ids[2:10])]  # fmt: skip
    assert first_submitted(Store(tmp_path / "empty.db"), 5.0) == 1


def test_dates_are_days_in_local_time_and_anything_else_is_refused() -> None:
    start, end = day_bounds("2026-11-01", "2026-11-01") or (0.0, 0.0)
    assert end - start in (86400.0, 82800.0, 90000.0)  # a day (DST days are 23 or 25 h)
    assert time.localtime(start)[:6] == (2026, 11, 1, 0, 0, 0)
    assert day_bounds("", "") == (0.0, 0.0)
    assert day_bounds("2026-13-01", "") is None and day_bounds("", "yesterday") is None
