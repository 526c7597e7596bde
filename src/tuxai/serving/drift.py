"""Drift: what a served model receives, per input feature, against the statistics of its training data.

Pure (numpy only). A ``Reference`` holds, per feature, bin edges cut at the training data's deciles
(plus one edge below its minimum and one above its maximum, so values never seen in training fall in
bins of their own) and the training share of each bin; categorical features hold their categories'
shares (the rest in one "other" bin). A ``Window`` counts what the server receives in the same bins;
every ``rows`` rows it closes and gives a ``Verdict``.

The tests are effect sizes, which stay meaningful at large n (a KS p-value flags everything at 100k
rows): the population stability index (PSI) and the Jensen–Shannon distance (base 2, in [0, 1]) of the
two bin distributions. A feature drifted when its PSI is at least ``DRIFT_PSI`` (0.25, the usual "major
shift"); 0.1 to 0.25 is "watch". Under no drift a window's PSI is about (bins - 1)(1/n + 1/m): 0.02 for
10 bins and 500 rows, far under the threshold, so false alarms are rare (tests/unit/test_drift.py
measures the rate over 100 windows).

    >>> ref = Reference.from_columns({"x": np.arange(1000.0)})
    >>> window = Window(ref, rows=500)
    >>> window.add({"x": np.arange(500.0) * 2}).features["x"].state
    'ok'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tuxai.errors import UsageError

WATCH_PSI = 0.1
DRIFT_PSI = 0.25
SMOOTHING = 0.5  # added to every bin's count (Laplace-style): an empty bin gives a finite PSI
MAX_CATEGORIES = 50  # categories kept per feature; the rest share one bin
OTHER = "\x00other"


@dataclass(frozen=True)
class FeatureReference:
    """One feature's bins: numeric (``edges``) or categorical (``categories``), with the training shares."""

    name: str
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def numeric(self) -> bool:
        """Whether the feature is binned by value (else by category)."""
        return not self.categories

    def counts(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """How many of ``values`` fall in each bin."""
        if self.numeric:
            data = np.asarray(values, dtype=np.float64).ravel()
            data = data[~np.isnan(data)]
            return np.bincount(np.searchsorted(self.edges, data, side="right"), minlength=len(self.shares))
        index = {c: i for i, c in enumerate(self.categories)}
        found = [index.get(str(v), len(self.categories)) for v in np.asarray(values, dtype=object).ravel()]
        return np.bincount(np.asarray(found, dtype=np.int64), minlength=len(self.shares))


def numeric_reference(name: str, values: npt.ArrayLike, bins: int = 10) -> FeatureReference:
    """A numeric feature's bins: edges at its quantiles, one below its minimum and one above its maximum.

    >>> numeric_reference("c", [3.0, 3.0]).edges  # a constant: below, at, above
    (3.0, 3.0000000000000004)
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[~np.isnan(data)]
    if data.size == 0:
        raise UsageError(f"feature {name!r} has no numeric value in the reference data", "give it training rows")
    cuts = np.quantile(data, np.linspace(0, 1, bins + 1)[1:-1]) if bins > 1 else np.array([])
    low, high = float(data.min()), float(np.nextafter(data.max(), np.inf))
    edges = tuple(float(e) for e in np.unique(np.concatenate([[low], cuts, [high]])))
    counts = np.bincount(np.searchsorted(edges, data, side="right"), minlength=len(edges) + 1)
    return FeatureReference(name, tuple(float(c) / data.size for c in counts), edges=edges)


def categorical_reference(name: str, values: Sequence[Any] | npt.ArrayLike) -> FeatureReference:
    """A categorical feature's bins: its ``MAX_CATEGORIES`` most frequent values, then "other"."""
    words = [str(v) for v in np.asarray(values, dtype=object).ravel()]
    if not words:
        raise UsageError(f"feature {name!r} has no value in the reference data", "give it training rows")
    kinds, counts = np.unique(np.asarray(words, dtype=object), return_counts=True)
    order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
    kept = tuple(str(kinds[i]) for i in order)
    shares = [float(counts[i]) / len(words) for i in order]
    return FeatureReference(name, (*shares, 1.0 - sum(shares)), categories=(*kept, OTHER))


def psi(expected: npt.ArrayLike, seen: npt.ArrayLike, expected_n: float, seen_n: float) -> float:
    """The population stability index of two bin distributions (shares), counts smoothed by ``SMOOTHING``.

    >>> round(psi([0.5, 0.5], [0.5, 0.5], 1000, 1000), 6)
    0.0
    """
    p = _smoothed(np.asarray(expected, dtype=np.float64), expected_n)
    q = _smoothed(np.asarray(seen, dtype=np.float64), seen_n)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(expected: npt.ArrayLike, seen: npt.ArrayLike) -> float:
    """The Jensen–Shannon distance (base 2: 0 the same, 1 disjoint) of two bin distributions."""
    p, q = np.asarray(expected, dtype=np.float64), np.asarray(seen, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: npt.NDArray[np.float64]) -> float:
        kept = a > 0
        return float(np.sum(a[kept] * np.log2(a[kept] / m[kept])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def _smoothed(shares: npt.NDArray[np.float64], n: float) -> npt.NDArray[np.float64]:
    counts: npt.NDArray[np.float64] = shares * n + SMOOTHING
    return counts / float(counts.sum())


@dataclass(frozen=True)
class FeatureVerdict:
    """One feature's drift in one window: its PSI, its Jensen–Shannon distance, and ok/watch/drift."""

    name: str
    psi: float
    js: float

    @property
    def state(self) -> str:
        """``drift`` (PSI ≥ 0.25), ``watch`` (≥ 0.1) or ``ok``."""
        return "drift" if self.psi >= DRIFT_PSI else "watch" if self.psi >= WATCH_PSI else "ok"


@dataclass(frozen=True)
class Verdict:
    """A closed window: how many rows, each feature's verdict; ``drifted`` names the drifted ones, worst first."""

    rows: int
    features: Mapping[str, FeatureVerdict]

    @property
    def drifted(self) -> tuple[str, ...]:
        """The features that drifted, highest PSI first."""
        found = [v for v in self.features.values() if v.state == "drift"]
        return tuple(v.name for v in sorted(found, key=lambda v: -v.psi))

    def summary(self) -> str:
        """One line: ``drift on x (PSI 0.41), y (PSI 0.30) over 500 rows`` or ``no drift over 500 rows``."""
        if not self.drifted:
            return f"no drift over {self.rows} rows"
        named = ", ".join(f"{n} (PSI {self.features[n].psi:.2f})" for n in self.drifted)
        return f"drift on {named} over {self.rows} rows"


@dataclass(frozen=True)
class Reference:
    """The training data's statistics of every input feature of a model version."""

    features: tuple[FeatureReference, ...]
    rows: int

    @classmethod
    def from_columns(cls, columns: Mapping[str, npt.ArrayLike], bins: int = 10) -> Reference:
        """Statistics of named columns: numbers binned by quantile, anything else by category."""
        built, rows = [], 0
        for name, values in columns.items():
            data = np.asarray(values)
            rows = max(rows, int(data.shape[0]) if data.ndim else 1)
            numeric = data.dtype.kind in "biuf"
            built.append(numeric_reference(name, data, bins) if numeric else categorical_reference(name, data))
        return cls(tuple(built), rows)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``reference.json`` beside a model version)."""
        return {
            "rows": self.rows,
            "features": [
                {"name": f.name, "shares": list(f.shares), "edges": list(f.edges), "categories": list(f.categories)}
                for f in self.features
            ],
        }

    @classmethod
    def from_json(cls, data: Any, origin: str = "reference") -> Reference:
        """Read ``to_json``'s form back.

        Raises:
            UsageError: the data is not that form (naming ``origin``).
        """
        try:
            features = tuple(
                FeatureReference(
                    str(f["name"]),
                    tuple(float(s) for s in f["shares"]),
                    tuple(float(e) for e in f.get("edges", ())),
                    tuple(str(c) for c in f.get("categories", ())),
                )
                for f in data["features"]
            )
            reference = cls(features, int(data["rows"]))
        except (KeyError, TypeError, ValueError) as error:
            raise UsageError(
                f"{origin} is not a drift reference: {error!r}", "write it with Reference.to_json"
            ) from None
        for f in features:
            bins = len(f.categories) if f.categories else len(f.edges) + 1
            if bins != len(f.shares) or not f.shares:
                raise UsageError(f"{origin}: feature {f.name!r} has {len(f.shares)} shares for {bins} bins")
        return reference


def columns_of(name: str, batch: npt.ArrayLike) -> dict[str, npt.NDArray[Any]]:
    """An input tensor (first axis the batch) as drift features: a vector is one feature, a table one per
    column (``x[3]``), a larger tensor two summaries per item (``x.mean``, ``x.std``).

    >>> sorted(columns_of("x", np.zeros((4, 2))))
    ['x[0]', 'x[1]']
    """
    data = np.asarray(batch)
    if data.ndim <= 1:
        return {name: data.reshape(-1)}
    if data.ndim == 2:
        return {f"{name}[{j}]": data[:, j] for j in range(data.shape[1])}
    if data.dtype.kind not in "biuf":
        return {}
    flat = data.reshape(data.shape[0], -1).astype(np.float64)
    return {f"{name}.mean": flat.mean(axis=1), f"{name}.std": flat.std(axis=1)}


class Window:
    """Counts of what the server received, per feature in the reference's bins; closes every ``rows`` rows."""

    def __init__(self, reference: Reference, rows: int = 1000) -> None:
        if rows < 50:
            raise UsageError(f"a drift window of {rows} rows is too small to mean anything", "use 50 rows or more")
        self.reference, self.rows = reference, rows
        self._counts = {f.name: np.zeros(len(f.shares), dtype=np.int64) for f in reference.features}
        self._seen = 0
        self.last: Verdict | None = None

    def add(self, columns: Mapping[str, npt.ArrayLike]) -> Verdict | None:
        """Count a batch of rows (feature name → one value per row); the verdict if this closed a window.

        A batch is counted whole, so a window may hold a little more than ``rows``."""
        batch = 0
        for feature in self.reference.features:
            if feature.name in columns:
                counts = feature.counts(columns[feature.name])
                self._counts[feature.name] += counts
                batch = max(batch, int(counts.sum()))
        self._seen += batch
        if self._seen < self.rows:
            return None
        self.last = self._close()
        return self.last

    def _close(self) -> Verdict:
        verdicts = {}
        for feature in self.reference.features:
            counts = self._counts[feature.name]
            n = float(counts.sum())
            if n == 0:
                continue
            shares = counts / n
            verdicts[feature.name] = FeatureVerdict(
                feature.name,
                psi(feature.shares, shares, self.reference.rows, n),
                js_distance(feature.shares, shares),
            )
            counts[:] = 0
        rows, self._seen = self._seen, 0
        return Verdict(rows, verdicts)
