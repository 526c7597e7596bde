"""Drift on served inputs against the training data's statistics (serving.drift): no false alarms on
held-out rows, the shifted or corrupted feature named, on scikit-learn-free data made here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tuxai.errors import UsageError
from tuxai.serving.drift import DRIFT_PSI, Reference, Window, columns_of, js_distance, numeric_reference, psi


def _table(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Three features of different kinds: a normal, a skewed integer count, a categorical colour."""
    return {
        "height": rng.normal(170, 10, rows),
        "visits": rng.poisson(3, rows),
        "colour": rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2]),
    }


def test_no_drift_alarms_under_5_percent_over_100_windows_of_held_out_rows() -> None:
    rng = np.random.default_rng(17)
    reference = Reference.from_columns(_table(rng, 5000))
    window = Window(reference, rows=500)
    verdicts = [window.add(_table(rng, 500)) for _ in range(100)]
    assert all(v is not None for v in verdicts)
    alarms = sum(1 for v in verdicts if v and v.drifted)
    assert alarms / 100 < 0.05, [v.summary() for v in verdicts if v and v.drifted]
    worst = max(f.psi for v in verdicts if v for f in v.features.values())
    assert worst < DRIFT_PSI / 2  # far under the threshold, not grazing it


@pytest.mark.parametrize(
    ("change", "feature"),
    [
        (lambda t: {**t, "height": t["height"] + 8}, "height"),  # shifted by 0.8 σ
        (lambda t: {**t, "visits": np.zeros_like(t["visits"])}, "visits"),  # corrupted: all zero
        (lambda t: {**t, "colour": np.full(t["colour"].shape, "red")}, "colour"),  # one category only
        (lambda t: {**t, "height": t["height"] * 100}, "height"),  # units changed: values never seen in training
    ],
)
def test_a_shifted_or_corrupted_feature_is_named_and_only_it(change, feature) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    reference = Reference.from_columns(_table(rng, 5000))
    verdict = Window(reference, rows=500).add(change(_table(rng, 500)))
    assert verdict is not None and verdict.drifted == (feature,), verdict.summary()
    assert verdict.summary().startswith(f"drift on {feature} (PSI ")


def test_a_window_closes_every_n_rows_and_starts_again() -> None:
    reference = Reference.from_columns({"x": np.arange(1000.0)})
    window = Window(reference, rows=100)
    assert window.add({"x": np.arange(60.0)}) is None
    closed = window.add({"x": np.arange(60.0)})
    assert closed is not None and closed.rows == 120 and window.last is closed
    assert window.add({"x": np.arange(60.0)}) is None  # counting from zero again


def test_constant_and_unseen_values_get_bins_of_their_own() -> None:
    constant = numeric_reference("edge_pixel", np.zeros(100))
    assert constant.shares == (0.0, 1.0, 0.0)
    assert list(constant.counts([-1.0, 0.0, 0.0, 5.0, float("nan")])) == [1, 2, 1]
    window = Window(Reference((constant,), 100), rows=50)
    verdict = window.add({"edge_pixel": np.full(50, 3.0)})
    assert verdict is not None and verdict.drifted == ("edge_pixel",)


def test_psi_and_js_are_zero_for_the_same_and_grow_with_the_shift() -> None:
    same = [0.25, 0.25, 0.5]
    assert psi(same, same, 1000, 1000) == pytest.approx(0.0) and js_distance(same, same) == pytest.approx(0.0)
    assert js_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    small, large = psi(same, [0.3, 0.25, 0.45], 1000, 1000), psi(same, [0.6, 0.2, 0.2], 1000, 1000)
    assert 0 < small < 0.1 < DRIFT_PSI < large


def test_tensors_become_features_by_column_or_by_summary() -> None:
    assert set(columns_of("x", np.zeros((3, 2)))) == {"x[0]", "x[1]"}
    assert list(columns_of("v", [1, 2, 3])) == ["v"]
    images = columns_of("img", np.ones((4, 8, 8)))
    assert set(images) == {"img.mean", "img.std"} and list(images["img.mean"]) == [1.0] * 4


def test_the_reference_reads_back_what_it_writes_and_refuses_another_form() -> None:
    rng = np.random.default_rng(5)
    reference = Reference.from_columns(_table(rng, 300))
    assert Reference.from_json(json.loads(json.dumps(reference.to_json()))) == reference
    with pytest.raises(UsageError, match=r"reference\.json is not a drift reference"):
        Reference.from_json({"features": [{}]}, "reference.json")
    broken = reference.to_json()
    broken["features"][0]["shares"] = [1.0]
    with pytest.raises(UsageError, match="shares for"):
        Reference.from_json(broken, "reference.json")
    with pytest.raises(UsageError, match="too small"):
        Window(reference, rows=10)
