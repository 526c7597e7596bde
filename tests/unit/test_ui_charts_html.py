"""The charts block as HTML (``ui.charts``): a summary that reads without a script, the series as data."""

from __future__ import annotations

import json
import re

from tuxai.model.wire_gpus import LiveGpu, LiveView
from tuxai.model.wire_ui import GpuLine, GpuSeries, UsersView, UserUse
from tuxai.ui.charts import built, charts, live_samples, range_links
from tuxai.ui.users import users_page

LINE = GpuLine(3, (100.0, 160.0, 220.0), (10.0, None, 30.0), (2.0**30, 3 * 2.0**30, None), (100.0, 200.0, None))


def test_the_summary_reads_without_a_script() -> None:
    html = charts(GpuSeries(100, 280, 60, 60, (LINE,)), "the last 1h")
    row = re.search(r"<tr><td>GPU 3</td>(.*?)</tr>", html)
    assert row is not None
    assert re.findall(r"<td>(.*?)</td>", row.group(1)) == ["20 %", "3.0 GiB", "150 W", "3"]  # means, peak
    assert "from the 1 min tier" in html


def test_the_data_block_holds_the_series_and_no_angle_bracket() -> None:
    html = charts(GpuSeries(100, 280, 1, 3, (LINE,)), "x")
    assert "a point every 3 s" in html
    if not built():  # a tree without `make ui-assets`: the table alone, no script that would 404
        assert "chart-data" not in html and "uplot" not in html
        return
    block = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert block is not None and "<" not in block.group(1)
    data = json.loads(block.group(1))
    assert data["labels"] == ["GPU 3"] and data["util_pct"] == [[10.0, None, 30.0]] and data["at"][0][1] == 160.0


def test_no_telemetry_says_so_and_the_range_links_keep_their_query() -> None:
    assert "no telemetry in this range" in charts(GpuSeries(0, 1, 1, 1, (GpuLine(0, (), (), (), ()),)), "x")
    links = range_links("/ui/users", "7d", {"user": "a&b"})
    assert 'href="/ui/users?user=a%26b&amp;range=7d" aria-current=true' in links


def test_the_users_page_shows_each_share_and_says_a_user_sees_only_itself() -> None:
    view = UsersView(0, 2 * 86400, 86400, (0.0, 86400.0), 7 * 86400, (
        UserUse("ada", 3.0, 2.0, (1.0, 0.5)), UserUse("b<o>b", 1.0, 0.0, (0.0, 0.0))))  # fmt: skip
    html = users_page(view, admin=True)
    assert "<td>ada</td><td>3.00</td>" in html and "75%" in html and "<td>1.50</td>" in html
    assert "b&lt;o&gt;b" in html and "b<o>b" not in html.split("chart-data")[0]
    assert "you see your own use" in users_page(view, admin=False) and "every 7.0 d" in html


def test_the_live_samples_carry_each_gpus_latest_numbers_for_the_live_charts() -> None:
    gpu = LiveGpu(2, None, 50.0, 40.0, 2**30, 2**34, 300.0, 400.0, None, 60.0, None, None, 0, None, (), "A100", ())
    assert live_samples(LiveView("simulated", "none", "", (gpu,), {}, {})) == {"gpus": {2: [50.0, 40.0, 2**30, 300.0]}}
    html = charts(GpuSeries(0, 900, 1, 2, (LINE,)), "x", live=True)
    if built():
        assert '"live":true' in html and '"span":900' in html


def test_E18_2_a_running_jobs_charts_grow_with_the_live_samples_and_keep_its_whole_run() -> None:
    html = charts(GpuSeries(0, 900, 1, 2, (LINE,)), "x", grow=True)
    assert "data-live-chart" in html  # ui.js asks the live events for each second's samples
    assert "data-live-chart" not in charts(GpuSeries(0, 900, 1, 2, (LINE,)), "x")  # an ended job's: drawn once
    if built():
        assert '"live":true' in html and '"span":0' in html  # span 0: nothing of the run let go
