"""How the daemon's background loops fare: the time of each loop's last good pass, its errors,
and how long to wait before the next try after a failure (0.1 s doubling to 30 s).

A pass that raises (a damaged page of the store, a full disk) is logged with its traceback on
the ``tuxai.daemon`` logger and tried again later; it never ends the loop. ``/v1/health``
answers 503 while the last good pass of the scheduling loop is older than ``stale_after_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("tuxai.daemon")

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 30.0


def backoff_s(failures: int, first_s: float = BACKOFF_FIRST_S, max_s: float = BACKOFF_MAX_S) -> float:
    """The wait after ``failures`` failed passes in a row.

    >>> [backoff_s(n) for n in (1, 2, 3)], backoff_s(20)
    ([0.1, 0.2, 0.4], 30.0)
    """
    return min(max_s, first_s * 2.0 ** max(0, failures - 1))


@dataclass
class LoopHealth:
    """One loop's record: last good pass (Unix seconds), errors in all, failures in a row."""

    name: str
    stale_after_s: float
    last_ok_at: float = field(default_factory=time.time)  # starting counts as a good pass
    errors: int = 0
    failing: int = 0
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def succeeded(self, now: float) -> None:
        """A pass went through: the age restarts, the backoff resets."""
        with self._lock:
            failing, since = self.failing, self.last_ok_at
            self.last_ok_at, self.failing = now, 0
        if failing:
            log.warning("%s works again after %d failures (%.1f s)", self.name, failing, now - since)

    def failed(self, error: BaseException) -> float:
        """Log ``error`` with its traceback; returns the seconds to wait before the next try."""
        with self._lock:
            self.errors += 1
            self.failing += 1
            self.last_error = f"{type(error).__name__}: {error}"
            delay = backoff_s(self.failing)
        log.error(
            "%s failed (%d in a row, %d in all); next try in %.1f s",
            self.name,
            self.failing,
            self.errors,
            delay,
            exc_info=error,
        )
        return delay

    def age_s(self, now: float) -> float:
        """Seconds since the last good pass."""
        return max(0.0, now - self.last_ok_at)

    def stale(self, now: float) -> bool:
        """No good pass for longer than ``stale_after_s``."""
        return self.age_s(now) > self.stale_after_s
