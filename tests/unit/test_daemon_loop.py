"""The scheduling loop survives a failing tick (security issue D3): logged with its traceback,
tried again with a growing backoff, and its health says how old the last good tick is."""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from typing import cast

import pytest

from tuxai.daemon.core import Daemon
from tuxai.daemon.health import LoopHealth, backoff_s
from tuxai.daemon.loop import run_loop


class FlakyDaemon:
    """Stands in for ``Daemon`` in the loop: its tick fails while ``broken`` is set."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.broken = threading.Event()
        self.ticks: list[tuple[float, bool, bool]] = []  # (monotonic time, full, failed)

    def tick(self, now: float, full: bool = True) -> None:
        failed = self.broken.is_set()
        self.ticks.append((time.monotonic(), full, failed))
        if failed:
            raise sqlite3.DatabaseError("database disk image is malformed")

    def resend_stops(self) -> None:
        pass


def _wait_for(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_D3_a_failing_tick_is_logged_retried_with_backoff_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FlakyDaemon()
    fake.broken.set()
    stop = threading.Event()
    health = LoopHealth("tick", stale_after_s=0.3)
    thread = threading.Thread(target=run_loop, args=(cast(Daemon, fake), stop, 10.0), kwargs={"health": health})
    with caplog.at_level(logging.ERROR, logger="tuxai.daemon"):
        thread.start()
        fake.wake.set()
        try:
            _wait_for(lambda: len(fake.ticks) >= 5)
            assert thread.is_alive()
            failed = [t for t in fake.ticks if t[2]]
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(failed)]
            # 0.1, 0.2, 0.4, 0.8 s: doubling, not a busy retry and not the 10 s period.
            assert gaps[0] == pytest.approx(0.1, abs=0.05) and gaps[2] == pytest.approx(0.4, abs=0.1)
            assert all(full for _, full, _ in fake.ticks[1:])  # a retry looks at every running job
            _wait_for(lambda: health.stale(time.time()))
            fake.broken.clear()
            _wait_for(lambda: not health.stale(time.time()))
            assert health.failing == 0 and health.errors >= 5
            count = len(fake.ticks)
            fake.wake.set()  # after recovery the loop answers events again at once
            _wait_for(lambda: len(fake.ticks) > count, timeout_s=1.0)
            assert not fake.ticks[-1][2]
        finally:
            stop.set()
            fake.wake.set()
            thread.join(timeout=5)
    assert not thread.is_alive()
    records = [r for r in caplog.records if r.name == "tuxai.daemon"]
    assert records and records[0].exc_info is not None
    assert "database disk image is malformed" in caplog.text and "Traceback" in caplog.text
    assert "tick failed (1 in a row, 1 in all); next try in 0.1 s" in caplog.text


def test_D3_backoff_doubles_to_thirty_seconds() -> None:
    assert [backoff_s(n) for n in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    assert backoff_s(9) == pytest.approx(25.6) and backoff_s(10) == backoff_s(100) == 30.0
