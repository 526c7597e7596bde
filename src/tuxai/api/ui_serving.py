"""The dashboard's Serving page, read: each running job the caller owns (root: every one) that wrote an
endpoint (``submit --serve``), its server's ``/metrics`` fetched over loopback only (the URL is the job's
own writing: the daemon reaches no other host for it), at most ``SCRAPE_BYTES`` in ``SCRAPE_TIMEOUT_S``,
no redirect followed; the request rate from the previous look at the same job.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx

from tuxai.daemon.config import Caller
from tuxai.daemon.core import Daemon
from tuxai.daemon.jobdirs import job_endpoint
from tuxai.model.job import JobState
from tuxai.model.wire_ui import ServedJob
from tuxai.ui.serving import model_stats

SCRAPE_TIMEOUT_S = 1.0
SCRAPE_BYTES = 1 << 20
MAX_SERVED = 20  # jobs scraped for one page
SCRAPERS = 8  # at once


def loopback(url: str) -> bool:
    """Whether ``url`` is an http(s) origin on a loopback address, as ``tuxai serve`` writes it: no user,
    path, query or fragment (the job writes it: it must not choose what root's request asks for).
    Example: http://127.0.0.1:8000 → True; http://127.0.0.1:8000/admin?x= → False."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        plain = not (parts.username or parts.password or parts.query or parts.fragment) and parts.path in ("", "/")
        return (
            parts.scheme in ("http", "https")
            and plain
            and (host == "localhost" or ipaddress.ip_address(host).is_loopback)
        )
    except ValueError:
        return False


def scrape(endpoint: str) -> str:
    """The body of ``endpoint``'s ``/metrics`` (its first ``SCRAPE_BYTES``).

    Raises:
        httpx.HTTPError: no answer in time, or not a 200.
    """
    with (
        httpx.Client(timeout=SCRAPE_TIMEOUT_S, follow_redirects=False, trust_env=False) as client,
        client.stream("GET", endpoint.rstrip("/") + "/metrics") as answer,
    ):
        answer.raise_for_status()
        body = b""
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) >= SCRAPE_BYTES:
                break
    return body[:SCRAPE_BYTES].decode("utf-8", "replace")


class ServedReader:
    """The Serving page's reads for one daemon, with the requests counted at the previous look per job."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.lock = threading.Lock()
        self.looks: dict[int, tuple[float, dict[tuple[str, str], int]]] = {}

    def served(self, caller: Caller) -> list[ServedJob]:
        """The serving jobs ``caller`` may read (its own; root: all), each with its models' numbers."""
        targets = []
        for record in self.daemon.store.jobs([JobState.RUNNING]):
            if not (caller.admin or caller.uid == record.uid):
                continue  # another's endpoint and numbers are its own (public_fields)
            endpoint = job_endpoint(record)
            if endpoint is not None:
                targets.append((record.id, record.spec.name, record.user, endpoint))
        return self.read_many(targets[:MAX_SERVED])

    def read_many(self, targets: list[tuple[int, str, str, str]]) -> list[ServedJob]:
        """Each (job id, name, user, endpoint) read, ``SCRAPERS`` at once (a page waits about one timeout,
        not one a server)."""
        if not targets:
            return []
        with ThreadPoolExecutor(min(SCRAPERS, len(targets))) as pool:
            return list(pool.map(lambda target: self._read(*target), targets))

    def _read(self, job_id: int, name: str, user: str, endpoint: str) -> ServedJob:
        if not loopback(endpoint):
            why = "not read: the daemon reads a loopback origin only (http://127.0.0.1:PORT)"
            return ServedJob(job_id, name, user, endpoint, (), why)
        now = time.monotonic()
        try:
            text = scrape(endpoint)
        except httpx.HTTPStatusError as exc:
            return ServedJob(job_id, name, user, endpoint, (), f"its /metrics answered {exc.response.status_code}")
        except httpx.HTTPError as exc:
            return ServedJob(job_id, name, user, endpoint, (), f"its /metrics did not answer: {type(exc).__name__}")
        with self.lock:
            at, previous = self.looks.get(job_id, (now, {}))
            stats = model_stats(text, previous, now - at if now > at else None)
            self.looks[job_id] = (now, {(m.model, m.version): m.requests for m in stats})
            for gone in [j for j in self.looks if j != job_id and now - self.looks[j][0] > 3600]:
                del self.looks[gone]
        return ServedJob(job_id, name, user, endpoint, tuple(stats))
