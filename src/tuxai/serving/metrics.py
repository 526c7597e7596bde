"""The model server's Prometheus metrics: requests, failures, latency, queue time, batch sizes.

Series are per model and version the repository knows; a request for a name it does not know
counts under ``model=""`` so that nobody can grow the metrics by asking for made-up names.
Every label value is escaped as the text format says (``\\``, ``"`` and newline):

    tuxai_serve_requests_total{model="mlp",version="1",code="200"} 3
    tuxai_serve_requests_total{model="",version="",code="404"} 20000
"""

from __future__ import annotations

import bisect
import itertools

from tuxai.serving.repository import Version

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def label_value(text: str) -> str:
    """A label value as the text exposition writes it: ``a"b\\c`` → ``a\\"b\\\\c``; newlines as ``\\n``."""
    return text.translate(_ESCAPES)


def labels(**pairs: str) -> str:
    """``labels(model="m", version="1")`` → ``model="m",version="1"`` (values escaped)."""
    return ",".join(f'{key}="{label_value(value)}"' for key, value in pairs.items())


class Histogram:
    """A Prometheus histogram: cumulative buckets, sum, count."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        """Count one value (in its own bucket; the exposition adds them up)."""
        self.sum += value
        self.count += 1
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            self.counts[index] += 1

    def lines(self, name: str, labelled: str) -> list[str]:
        """Exposition lines (cumulative buckets); ``labelled`` comes from ``labels()``."""
        cumulative = itertools.accumulate(self.counts)
        out = [f'{name}_bucket{{{labelled},le="{b:g}"}} {c}' for b, c in zip(self.buckets, cumulative, strict=True)]
        out.append(f'{name}_bucket{{{labelled},le="+Inf"}} {self.count}')
        return [*out, f"{name}_sum{{{labelled}}} {self.sum:.9g}", f"{name}_count{{{labelled}}} {self.count}"]


class Metrics:
    """Requests, failures, latency, queue time and batch sizes per model and version."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}
        self.queue: dict[tuple[str, str], Histogram] = {}
        self.batches: dict[tuple[str, str], Histogram] = {}

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
        """The scrape body."""
        lines = ["# HELP tuxai_serve_requests_total Inference requests by model, version and HTTP status.",
                 "# TYPE tuxai_serve_requests_total counter"]  # fmt: skip
        failures: dict[tuple[str, str], int] = {}
        for (model, version, status), count in sorted(self.requests.items()):
            labelled = labels(model=model, version=version, code=str(status))
            lines.append(f"tuxai_serve_requests_total{{{labelled}}} {count}")
            if status >= 400:
                failures[(model, version)] = failures.get((model, version), 0) + count
        lines += ["# HELP tuxai_serve_failures_total Inference requests that failed (4xx and 5xx).",
                  "# TYPE tuxai_serve_failures_total counter"]  # fmt: skip
        for (model, version), count in sorted(failures.items()):
            lines.append(f"tuxai_serve_failures_total{{{labels(model=model, version=version)}}} {count}")
        for name, help_text, table in (
            ("tuxai_serve_request_seconds", "Request latency in the server.", self.latency),
            ("tuxai_serve_queue_seconds", "Time a request waited for its batch.", self.queue),
            ("tuxai_serve_batch_size", "Items in each batch the model ran.", self.batches),
        ):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
            for (model, version), histogram in sorted(table.items()):
                lines += histogram.lines(name, labels(model=model, version=version))
        return "\n".join(lines) + "\n"
