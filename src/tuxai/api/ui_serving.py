"""The dashboard's Serving page, read: each running job the caller owns (root: every one) that wrote an
endpoint (``submit --serve``), its server's ``/metrics`` fetched over loopback only (the URL is the job's
own writing: the daemon reaches no other host for it), at most ``SCRAPE_BYTES`` in ``SCRAPE_TIMEOUT_S``,
no redirect followed; the request rate from the previous look at the same job.

``SCRAPE_TIMEOUT_S`` is a whole scrape's deadline — connect, head and body together — not a read's: a
server that trickles a byte under the read timeout would otherwise hold the page (and the API's worker
thread it runs in) for as long as it likes (security issue S5). Every server of a page is read at once
on one event loop and each scrape still running at its deadline is cancelled (its connection closed), so
a page returns within about one deadline and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tuxai.daemon.config import Caller
from tuxai.daemon.core import Daemon
from tuxai.daemon.jobdirs import job_endpoint
from tuxai.model.job import JobState
from tuxai.model.wire_ui import ServedJob
from tuxai.ui.serving import model_stats

if TYPE_CHECKING:
    import httpx  # imported when a page is read: its ~0.2 s are not every daemon start's

SCRAPE_TIMEOUT_S = 1.0
SCRAPE_BYTES = 1 << 20
MAX_SERVED = 20  # jobs scraped for one page, all at once


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


async def scrape(client: httpx.AsyncClient, endpoint: str) -> str:
    """The body of ``endpoint``'s ``/metrics`` (its first ``SCRAPE_BYTES``), with no deadline of its own.

    Raises:
        httpx.HTTPError: no answer, or not a 200.
    """
    async with client.stream("GET", endpoint.rstrip("/") + "/metrics") as answer:
        answer.raise_for_status()
        body = bytearray()
        async for chunk in answer.aiter_bytes():
            body += chunk
            if len(body) >= SCRAPE_BYTES:
                break
    return bytes(body[:SCRAPE_BYTES]).decode("utf-8", "replace")


async def scrape_all(endpoints: Sequence[str]) -> list[str | Exception]:
    """Each endpoint's ``/metrics`` body, or why not (``TimeoutError``: cut at ``SCRAPE_TIMEOUT_S``, head and
    body together; an ``httpx.HTTPError``), all at once."""
    import httpx

    async def one(client: httpx.AsyncClient, endpoint: str) -> str | Exception:
        try:
            return await asyncio.wait_for(scrape(client, endpoint), SCRAPE_TIMEOUT_S)
        except (TimeoutError, httpx.HTTPError) as exc:
            return exc

    async with httpx.AsyncClient(timeout=SCRAPE_TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
        return list(await asyncio.gather(*(one(client, endpoint) for endpoint in endpoints)))


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
        """Each (job id, name, user, endpoint) read, all at once: a page waits at most about one
        ``SCRAPE_TIMEOUT_S``, whatever its servers do (a sync route's thread: no event loop runs in it)."""
        readable = [loopback(endpoint) for *_, endpoint in targets]
        now = time.monotonic()
        scraped = [e for (*_, e), ok in zip(targets, readable, strict=True) if ok]
        bodies = iter(asyncio.run(scrape_all(scraped)) if scraped else [])
        return [self._read(*t, next(bodies) if ok else None, now) for t, ok in zip(targets, readable, strict=True)]

    def _read(
        self, job_id: int, name: str, user: str, endpoint: str, body: str | Exception | None, now: float
    ) -> ServedJob:
        """One job's view from its scrape's ``body`` (None: not read, not a loopback origin)."""
        if body is None:
            why = "not read: the daemon reads a loopback origin only (http://127.0.0.1:PORT)"
            return ServedJob(job_id, name, user, endpoint, (), why)
        import httpx

        if isinstance(body, httpx.HTTPStatusError):
            return ServedJob(job_id, name, user, endpoint, (), f"its /metrics answered {body.response.status_code}")
        if isinstance(body, TimeoutError | httpx.TimeoutException):
            why = f"its /metrics did not answer within {SCRAPE_TIMEOUT_S:g} s"
            return ServedJob(job_id, name, user, endpoint, (), why)
        if isinstance(body, Exception):
            return ServedJob(job_id, name, user, endpoint, (), f"its /metrics did not answer: {type(body).__name__}")
        text = body
        with self.lock:
            at, previous = self.looks.get(job_id, (now, {}))
            try:
                stats = model_stats(text, previous, now - at if now > at else None)
            except (ValueError, ArithmeticError) as exc:  # one server's numbers never fail the page (T4)
                return ServedJob(job_id, name, user, endpoint, (), f"its /metrics could not be read: {exc}")
            self.looks[job_id] = (now, {(m.model, m.version): m.requests for m in stats})
            for gone in [j for j in self.looks if j != job_id and now - self.looks[j][0] > 3600]:
                del self.looks[gone]
        return ServedJob(job_id, name, user, endpoint, tuple(stats))
