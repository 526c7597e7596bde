"""Prometheus text exposition (format 0.0.4), as text and nothing else: the one writer behind the
daemon's ``/metrics`` (``telemetry/prometheus.py``) and the model server's (``serving/metrics.py``).

Every label value goes through ``label_value``, so a job or model name can hold any character
(``"``, ``\\``, a newline) and still be one label value, never a line of its own:

    >>> out = Exposition()
    >>> out.family("tuxai_job_running", "gauge", "1 for each running job.", [(labels(name='a"b\\nc'), 1.0)])
    >>> print(out.text(), end="")
    # HELP tuxai_job_running 1 for each running job.
    # TYPE tuxai_job_running gauge
    tuxai_job_running{name="a\\"b\\nc"} 1
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable

_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})


def label_value(value: object) -> str:
    """A label value as the text format writes it: ``a"b\\c`` → ``a\\"b\\\\c``, a newline → ``\\n``."""
    return str(value).translate(_LABEL_ESCAPES)


def labels(**pairs: object) -> str:
    """``labels(model="m", version=1)`` → ``model="m",version="1"`` (values escaped, no braces)."""
    return ",".join(f'{key}="{label_value(value)}"' for key, value in pairs.items())


def number(value: float) -> str:
    """A sample value: ``97.0`` → ``97``, ``0.25`` → ``0.25`` (shortest exact form), ``inf`` → ``+Inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(float(value))


def sample(name: str, labelled: str, value: float) -> str:
    """One sample line: ``name{labelled} value`` (``labelled`` from ``labels()``; empty: no braces)."""
    return f"{name}{{{labelled}}} {number(value)}" if labelled else f"{name} {number(value)}"


class Histogram:
    """A Prometheus histogram: cumulative buckets, sum, count."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        """Count one value (in its own bucket; ``lines`` adds them up)."""
        self.sum += value
        self.count += 1
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            self.counts[index] += 1

    def lines(self, name: str, labelled: str) -> list[str]:
        """The ``_bucket`` (cumulative, ``le`` last), ``_sum`` and ``_count`` lines; ``labelled`` from ``labels()``."""
        prefix = f"{labelled}," if labelled else ""
        cumulative = itertools.accumulate(self.counts)
        out = [f'{name}_bucket{{{prefix}le="{b:g}"}} {c}' for b, c in zip(self.buckets, cumulative, strict=True)]
        out.append(f'{name}_bucket{{{prefix}le="+Inf"}} {self.count}')
        return [*out, sample(f"{name}_sum", labelled, self.sum), sample(f"{name}_count", labelled, self.count)]


class Exposition:
    """A scrape body, family by family: ``# HELP``, ``# TYPE``, then the samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _head(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text.translate(_HELP_ESCAPES)}", f"# TYPE {name} {kind}"]

    def family(self, name: str, kind: str, help_text: str, rows: Iterable[tuple[str, float]]) -> None:
        """A counter or gauge: ``rows`` of (``labels()`` text, value); a family with no rows is left out."""
        body = [sample(name, labelled, value) for labelled, value in rows]
        if body:
            self._head(name, kind, help_text)
            self.lines += body

    def histograms(self, name: str, help_text: str, rows: Iterable[tuple[str, Histogram]]) -> None:
        """A histogram family: ``rows`` of (``labels()`` text, histogram); none: left out."""
        body = [line for labelled, histogram in rows for line in histogram.lines(name, labelled)]
        if body:
            self._head(name, "histogram", help_text)
            self.lines += body

    def text(self) -> str:
        """The body (``text/plain; version=0.0.4``), ending in a newline."""
        return "\n".join(self.lines) + "\n" if self.lines else ""
