"""The daemon's loop: a tick on every wake-up, a full one every few seconds, never a busy poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tuxai.daemon.core import Daemon
from tuxai.daemon.health import LoopHealth


def run_loop(
    daemon: Daemon,
    stop: threading.Event,
    period_s: float,
    clock: Callable[[], float] = time.time,
    health: LoopHealth | None = None,
) -> None:
    """Tick on every wake-up (submit, a job's end, cancel, hold); every ``period_s`` a full tick
    that looks at every running job and re-sends stop requests. Never a busy poll.

    A tick that raises (a damaged store, a full disk) is logged with its traceback and tried
    again, full, after a backoff (0.1 s doubling to 30 s; wake-ups do not shorten it);
    ``health`` records the last good tick. The loop ends only with ``stop``."""
    health = health if health is not None else LoopHealth("tick", stale_after_s=3 * period_s)
    last_full = clock()
    retry = False
    while not stop.is_set():
        if not retry:
            daemon.wake.wait(timeout=period_s)
        daemon.wake.clear()
        if stop.is_set():
            break
        now = clock()
        full = retry or now - last_full >= period_s
        try:
            daemon.tick(now, full=full)
            if full:
                daemon.resend_stops()
                last_full = now
        except Exception as exc:  # noqa: BLE001 (whatever a tick meets, the loop must go on)
            retry = True
            stop.wait(health.failed(exc))
            continue
        retry = False
        health.succeeded(clock())
