"""The model server's Prometheus metrics: requests, failures, latency, queue time, batch sizes.

Series are per model and version the repository knows; a request for a name it does not know
counts under ``model=""`` so that nobody can grow the metrics by asking for made-up names. Every
HTTP answer, whatever the path, counts once more by route (a fixed set: ``app.ROUTES``, ``unknown``
for a path the server does not have) and status, so a 404 shows as a 404 and a scan adds no series.
Every label value is escaped as the text format says (``\\``, ``"`` and newline; ``model.exposition``):

    tuxai_serve_requests_total{model="mlp",version="1",code="200"} 3
    tuxai_serve_requests_total{model="",version="",code="404"} 20000
    tuxai_serve_http_requests_total{route="unknown",code="404"} 12
"""

from __future__ import annotations

from tuxai.model.exposition import Exposition, Histogram, labels
from tuxai.serving.repository import Version

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """Requests, failures, latency, queue time and batch sizes per model and version."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}
        self.queue: dict[tuple[str, str], Histogram] = {}
        self.batches: dict[tuple[str, str], Histogram] = {}
        self.responses: dict[tuple[str, int], int] = {}

    def response(self, route: str, status: int) -> None:
        """One HTTP answer of any route (``route`` from the server's fixed set)."""
        key = (route, status)
        self.responses[key] = self.responses.get(key, 0) + 1

    def request(self, model: str, version: str, status: int, seconds: float) -> None:
        """One answered inference request (``model`` and ``version`` empty when the repository has no such one)."""
        key = (model, version, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.latency.setdefault((model, version), Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, version: Version, size: int, waits: list[float]) -> None:
        """One batch the model ran, and how long its requests waited."""
        key = (version.name, str(version.number))
        self.batches.setdefault(key, Histogram(BATCH_BUCKETS)).observe(size)
        queue = self.queue.setdefault(key, Histogram(LATENCY_BUCKETS))
        for wait in waits:
            queue.observe(wait)

    def render(self) -> str:
        """The scrape body (``model.exposition`` writes it: every label value escaped)."""
        out = Exposition()
        failures: dict[tuple[str, str], int] = {}
        for (model, version, status), count in self.requests.items():
            if status >= 400:
                failures[(model, version)] = failures.get((model, version), 0) + count
        requests = [(labels(model=m, version=v, code=c), n) for (m, v, c), n in sorted(self.requests.items())]
        out.family("tuxai_serve_requests_total", "counter", "Inference requests by model, version and HTTP status.",
                   requests)  # fmt: skip
        out.family("tuxai_serve_failures_total", "counter", "Inference requests that failed (4xx and 5xx).",
                   [(labels(model=m, version=v), n) for (m, v), n in sorted(failures.items())])  # fmt: skip
        out.family("tuxai_serve_http_requests_total", "counter", "HTTP requests by route and status (404s included).",
                   [(labels(route=r, code=c), n) for (r, c), n in sorted(self.responses.items())])  # fmt: skip
        for name, help_text, table in (
            ("tuxai_serve_request_seconds", "Request latency in the server.", self.latency),
            ("tuxai_serve_queue_seconds", "Time a request waited for its batch.", self.queue),
            ("tuxai_serve_batch_size", "Items in each batch the model ran.", self.batches),
        ):
            out.histograms(name, help_text, [(labels(model=m, version=v), h) for (m, v), h in sorted(table.items())])
        return out.text()
