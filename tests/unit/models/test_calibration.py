"""LogisticCalibrator: Newton/IRLS logistic fit in numpy (titan.models.calibration)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titan.models.calibration import LogisticCalibrator, sigmoid


def _synthetic(
    intercept: float, slopes: list[float], n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=1.0, scale=2.0, size=(n, len(slopes)))
    p = sigmoid(intercept + x @ np.asarray(slopes))
    return x, (rng.random(n) < p).astype(np.float64)


def _raw_parameters(cal: LogisticCalibrator) -> tuple[float, np.ndarray]:
    """(intercept, slopes) in the units of the unstandardised scores."""
    assert cal.coef is not None and cal.mean is not None and cal.scale is not None
    slopes = cal.coef / cal.scale
    return cal.intercept - float(slopes @ cal.mean), slopes


def test_recovers_known_one_feature_logistic_parameters() -> None:
    x, y = _synthetic(-0.3, [1.5], 40_000)
    cal = LogisticCalibrator(l2=1e-6).fit(x[:, 0], y)
    intercept, slopes = _raw_parameters(cal)
    assert intercept == pytest.approx(-0.3, abs=0.05)
    assert slopes[0] == pytest.approx(1.5, abs=0.06)


def test_recovers_known_two_feature_logistic_parameters() -> None:
    x, y = _synthetic(0.2, [0.8, -0.5], 40_000, seed=1)
    intercept, slopes = _raw_parameters(LogisticCalibrator(l2=1e-6).fit(x, y))
    assert intercept == pytest.approx(0.2, abs=0.05)
    np.testing.assert_allclose(slopes, [0.8, -0.5], atol=0.04)


def test_ties_are_excluded_so_the_fit_matches_the_fit_without_them() -> None:
    x, y = _synthetic(0.1, [1.0], 2000)
    clean = LogisticCalibrator().fit(x[:, 0], y)
    spots = np.arange(0, 2000, 7)
    tied = LogisticCalibrator().fit(np.insert(x[:, 0], spots, 5.0), np.insert(y, spots, np.nan))
    assert tied.state_dict() == clean.state_dict()


def test_non_finite_scores_are_excluded_from_fitting() -> None:
    x, y = _synthetic(0.1, [1.0], 2000)
    clean = LogisticCalibrator().fit(x[:, 0], y)
    dirty = LogisticCalibrator().fit(np.r_[x[:, 0], np.nan, np.inf], np.r_[y, 1.0, 0.0])
    assert dirty.state_dict() == clean.state_dict()


def test_too_few_samples_leaves_it_unfitted_with_nan_output() -> None:
    x, y = _synthetic(0.0, [1.0], 49)
    cal = LogisticCalibrator(min_samples=50).fit(x[:, 0], y)
    assert not cal.is_fitted
    assert np.isnan(cal.predict(np.array([0.0, 1.0]))).all()


def test_a_single_class_leaves_it_unfitted() -> None:
    cal = LogisticCalibrator(min_samples=2).fit(np.arange(100.0), np.ones(100))
    assert not cal.is_fitted and np.isnan(cal.predict(np.zeros(1))).all()


def test_refit_with_too_few_samples_forgets_the_previous_fit() -> None:
    x, y = _synthetic(0.0, [1.0], 500)
    cal = LogisticCalibrator().fit(x[:, 0], y)
    cal.fit(x[:10, 0], y[:10])
    assert not cal.is_fitted


def test_separable_data_gives_a_finite_monotone_fit() -> None:
    """The L2 penalty keeps the slope finite when the classes are perfectly separated."""
    x = np.linspace(-1.0, 1.0, 400)
    cal = LogisticCalibrator(l2=1e-3).fit(x, (x > 0).astype(np.float64))
    p = cal.predict(x)
    assert cal.coef is not None and np.isfinite(cal.coef).all()
    assert np.all(np.diff(p) >= 0) and p[0] < 0.05 and p[-1] > 0.95


def test_larger_l2_shrinks_the_slope() -> None:
    x, y = _synthetic(0.0, [0.5], 3000)
    weak = LogisticCalibrator(l2=1e-4).fit(x[:, 0], y)
    strong = LogisticCalibrator(l2=1.0).fit(x[:, 0], y)
    assert weak.coef is not None and strong.coef is not None
    assert abs(strong.coef[0]) < 0.7 * abs(weak.coef[0])


def test_constant_score_fits_the_base_rate() -> None:
    y = np.r_[np.ones(300), np.zeros(100)]
    cal = LogisticCalibrator().fit(np.full(400, 3.0), y)
    assert cal.predict(np.array([3.0, -7.0])) == pytest.approx([0.75, 0.75], abs=1e-6)


def test_state_dict_round_trips_through_json() -> None:
    x, y = _synthetic(0.4, [1.2, 0.3], 1000)
    cal = LogisticCalibrator(l2=0.01, min_samples=20).fit(x, y)
    restored = LogisticCalibrator()
    restored.load_state_dict(json.loads(json.dumps(cal.state_dict())))
    np.testing.assert_array_equal(restored.predict(x), cal.predict(x))
    assert (restored.l2, restored.min_samples) == (0.01, 20)


def test_non_finite_rows_predict_nan_and_others_stay_finite() -> None:
    x, y = _synthetic(0.0, [1.0], 500)
    cal = LogisticCalibrator().fit(x[:, 0], y)
    p = cal.predict(np.array([0.0, np.nan, np.inf, 1e300]))
    assert np.isnan(p[1:3]).all() and np.isfinite(p[[0, 3]]).all()


def test_wrong_number_of_columns_is_an_error() -> None:
    x, y = _synthetic(0.0, [1.0, 1.0], 500)
    cal = LogisticCalibrator().fit(x, y)
    with pytest.raises(ValueError, match="2 score columns"):
        cal.predict(np.zeros((3, 1)))


@settings(max_examples=40, deadline=None)
@given(
    scores=st.lists(st.floats(-1e6, 1e6), min_size=60, max_size=200),
    seed=st.integers(0, 2**16),
)
def test_probabilities_stay_in_unit_interval_for_any_finite_data(
    scores: list[float], seed: int
) -> None:
    x = np.asarray(scores)
    y = (np.random.default_rng(seed).random(x.size) < 0.5).astype(np.float64)
    cal = LogisticCalibrator(min_samples=10).fit(x, y)
    p = cal.predict(np.r_[x, -1e300, 1e300])
    if cal.is_fitted:
        assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    else:
        assert np.isnan(p).all()


def test_extreme_scores_far_outside_the_training_range_saturate_not_nan() -> None:
    rng = np.random.default_rng(0)
    x = 1e-9 * rng.normal(size=400)
    cal = LogisticCalibrator().fit(x, (x + 1e-9 * rng.normal(size=400) > 0).astype(np.float64))
    p = cal.predict(np.array([-1e300, 1e300]))
    assert p[0] < 1e-6 and p[1] > 1 - 1e-6
