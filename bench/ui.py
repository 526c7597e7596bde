"""Dashboard pages with a year of history: server time per page against a bare SELECT of the same rows.

    python bench/ui.py [--jobs 100000] [--requests 40]

A synthetic store in the daemon's shape: ``--jobs`` finished jobs over the last year (their events and
energy), and the telemetry the tiers keep of an 8-GPU box (1 h rows for a year, 1 min for a week, 1 s
for an hour). A real daemon (``python -m tuxai.api.server``, the simulated DGX) serves the pages; each is
asked ``--requests`` times over loopback HTTP with a session cookie, and its p50/p95 printed beside the
floor: the bare ``SELECT`` of the rows that page shows, run in this process on the same file (and the
HTTP floor, the login-help page, which reads nothing). Target (issue 18): p95 under 100 ms a page.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.daemon_helpers import DaemonProcess, finish  # noqa: E402

from tuxai.model.job import JobSpec  # noqa: E402
from tuxai.model.jobfile import spec_to_dict  # noqa: E402
from tuxai.model.resources import Allocation, GpuShare, Request, allocation_to_dict  # noqa: E402

DGX = REPO / "examples" / "inventories" / "dgx-a100.yaml"
DAY = 86400.0
USERS = ("ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal")
TARGET_S = 0.100


def fill(path: Path, jobs: int, now: float) -> int:
    """The synthetic year in the store at ``path``; the id of a job that ran 10 h on 2 GPUs 20 days ago."""
    spec = json.dumps(spec_to_dict(JobSpec(command=("python", "train.py"), name="train", request=Request(gpus=2))))
    db = sqlite3.connect(path)
    with db:
        rows = []
        for i in range(jobs):
            ended = now - 365 * DAY + (i + 1) * (365 * DAY - 3600) / jobs
            started = ended - 600 - (i % 7) * 600
            rows.append((f"job{i}", USERS[i % len(USERS)], 1000 + i % 8, 1000, "[]", spec, "{}", "succeeded",
                         "exit 0", 0, started - 30, started - 30, started, ended, 0, ended - started))  # fmt: skip
        db.executemany(
            "INSERT INTO jobs (name, user, uid, gid, groups_json, spec_json, environment_json, state, reason,"
            " priority, submitted_at, eligible_at, started_at, ended_at, exit_code, wall_s)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        ids = [r[0] for r in db.execute("SELECT id FROM jobs ORDER BY id")]
        first = ids[0]
        events = []
        for job_id, row in zip(ids, rows, strict=True):
            events += [(job_id, row[10], None, "pending", "submitted"), (job_id, row[12], "pending", "running", ""),
                       (job_id, row[13], "running", "succeeded", "exit 0")]  # fmt: skip
        db.executemany("INSERT INTO events (job_id, at, from_state, to_state, reason) VALUES (?,?,?,?,?)", events)
        db.executemany(
            "INSERT INTO job_energy (job_id, gpu_j, cpu_j, gpu_s, methods_json, grid_g_per_kwh, pue, updated_at)"
            " VALUES (?,?,?,?,'{}',400,1.2,?)",
            [(job_id, 3e5, 2e4, 2 * row[15], row[13]) for job_id, row in zip(ids, rows, strict=True)],
        )
        series = []
        for resolution, back in ((3600, 365 * DAY), (60, 7 * DAY), (1, 3600.0)):
            start = int((now - back) // resolution) * resolution
            for at in range(start, int(now) - resolution, resolution):
                series += [(resolution, gpu, float(at), 50.0 + gpu, 2.0**34, 250.0, 250.0 * resolution, 60.0)
                           for gpu in range(8)]  # fmt: skip
        db.executemany("INSERT OR REPLACE INTO gpu_series VALUES (?,?,?,?,?,?,?,?)", series)
        detail = first + int(jobs * (345 / 365))
        db.execute("UPDATE jobs SET started_at=ended_at-36000, wall_s=36000 WHERE id=?", (detail,))
        allocation = allocation_to_dict(Allocation("dgx", (GpuShare(2, None), GpuShare(3, None))))
        db.execute("UPDATE jobs SET allocation_json=? WHERE id=?", (json.dumps(allocation), detail))
    db.close()
    return detail


def timed(call: Callable[[], object], times: int) -> tuple[float, float, float]:
    """p50 and p95 of ``call``'s wall time over ``times`` calls after a first one, and that first one's
    (a chart's first look reads its whole range; later looks its last minutes: ``store.charts.SeriesCache``)."""
    started = time.perf_counter()
    call()
    first = time.perf_counter() - started
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    cuts = statistics.quantiles(seconds, n=20)
    return statistics.median(seconds), cuts[18], first


def main() -> int:
    """Fill, serve, time each page and its floor, print the table and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        daemon = DaemonProcess(home, DGX, ("--tcp", "127.0.0.1:0")).start()
        finish(daemon)  # the home and its store made by the daemon itself; filled while it is down
        now = time.time()
        built = time.perf_counter()
        detail = fill(home / "tuxai.db", args.jobs, now)
        print(f"store: {args.jobs:,} jobs over a year, 8 GPUs' tiers, filled in {time.perf_counter() - built:.1f} s")
        daemon = DaemonProcess(home, DGX, ("--tcp", "127.0.0.1:0")).start()
        try:
            return measure(daemon, home / "tuxai.db", detail, args.requests, now)
        finally:
            finish(daemon)


def measure(daemon: DaemonProcess, store: Path, detail: int, times: int, now: float) -> int:
    """Time every page and its bare SELECT; print them."""
    url = daemon.client.ui_login().url
    base = url.split("/ui/", 1)[0]
    floor = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    (oldest,) = floor.execute("SELECT MIN(id) + 50000 FROM jobs").fetchone()
    pages: list[tuple[str, str, str, tuple[object, ...]]] = [
        ("Overview (15 min, 1 s)", "/ui/", "SELECT * FROM gpu_series WHERE resolution=1 AND at>=?", (now - 900,)),
        ("Overview (1 h, 1 s)", "/ui/?range=1h", "SELECT * FROM gpu_series WHERE resolution=1 AND at>=?",
         (now - 3600,)),
        ("Overview (30 d, 1 h)", "/ui/?range=30d", "SELECT * FROM gpu_series WHERE resolution=3600 AND at>=?",
         (now - 30 * DAY,)),
        ("Queue", "/ui/queue", "SELECT * FROM jobs WHERE state IN ('pending','requeued','running')", ()),
        ("Jobs page 1", "/ui/jobs", "SELECT * FROM jobs ORDER BY id DESC LIMIT 50", ()),
        ("Jobs page 1,000", f"/ui/jobs?before={oldest}", "SELECT * FROM jobs WHERE id<? ORDER BY id DESC LIMIT 50",
         (oldest,)),
        ("Jobs of one user", "/ui/jobs?user=cy", "SELECT * FROM jobs WHERE user='cy' ORDER BY id DESC LIMIT 50", ()),
        ("Job detail with charts", f"/ui/jobs/{detail}",
         "SELECT * FROM gpu_series WHERE resolution=3600 AND gpu IN (2,3) AND at>=? AND at<?",
         (now - 21 * DAY, now - 20 * DAY)),
        ("Users (30 days)", "/ui/users", "SELECT j.user, e.gpu_s, j.ended_at FROM jobs j JOIN job_energy e"
         " ON e.job_id=j.id WHERE j.ended_at>=?", (now - 30 * DAY,)),
    ]  # fmt: skip
    worst = 0.0
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get(url).status_code == 303
        _, howto, _ = timed(lambda: http.get("/ui/howto"), times)
        print(f"HTTP floor (/ui/howto, reads nothing): p95 {howto * 1e3:.1f} ms\n")
        print(f"{'page':<24} {'first ms':>8} {'p50 ms':>7} {'p95 ms':>7} {'SELECT p95':>10} {'ratio':>6}  rows")
        for name, path, sql, params in pages:
            p50, p95, first = timed(lambda path=path: http.get(path), times)
            answer = http.get(path)
            assert answer.status_code == 200 and "<main>" in answer.text, (path, answer.status_code)
            rows = len(floor.execute(sql, params).fetchall())
            _, bare, _ = timed(lambda sql=sql, params=params: floor.execute(sql, params).fetchall(), times)
            worst = max(worst, p95)
            print(f"{name:<24} {first * 1e3:>8.1f} {p50 * 1e3:>7.1f} {p95 * 1e3:>7.1f} {bare * 1e3:>10.2f}"
                  f" {p95 / bare:>6.0f}  {rows:,}")  # fmt: skip
    print("\ntarget (p95 < 100 ms every page):", "met" if worst < TARGET_S else f"NOT met (worst {worst * 1e3:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
