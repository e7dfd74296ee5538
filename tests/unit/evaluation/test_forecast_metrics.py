"""Direction-forecast metrics: scikit-learn oracles, properties, tie handling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from titan.evaluation import (
    accuracy,
    brier,
    ece,
    forecast_report,
    log_loss,
    majority_class_baseline,
    roc_auc,
)

SEEDS = range(8)


def _random_case(seed: int, n: int = 500, decimals: int | None = None) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    if decimals is not None:
        p = np.round(p, decimals)  # many tied scores
    y = (rng.uniform(size=n) < p).astype(np.float64)
    return p, y


# Hypothesis strategy: probabilities on a 1/1000 grid (so 1 - p keeps order and ties exactly)
# and outcomes containing both classes.
_grid_p = st.integers(0, 1000).map(lambda k: k / 1000)


@st.composite
def _two_class_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 60))
    p = np.array(draw(st.lists(_grid_p, min_size=n, max_size=n)))
    y = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)))
    y[0], y[1] = 0.0, 1.0
    return p, y


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [None, 1])
def test_matches_sklearn_oracles(seed: int, decimals: int | None) -> None:
    """accuracy, log loss, Brier and AUC equal scikit-learn's, with and without tied scores."""
    p, y = _random_case(seed, decimals=decimals)
    assert accuracy(p, y) == pytest.approx(skm.accuracy_score(y, p > 0.5), abs=1e-12)
    assert log_loss(p, y) == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), rel=1e-9)
    assert brier(p, y) == pytest.approx(skm.brier_score_loss(y, p), rel=1e-9)
    assert roc_auc(p, y) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_ties_are_excluded_from_every_metric(seed: int) -> None:
    """Tie rows (NaN outcome) change no metric: equal to scoring only the resolved rows."""
    p, y = _random_case(seed, decimals=2)
    with_ties = y.copy()
    tie_rows = np.random.default_rng(seed + 100).uniform(size=y.size) < 0.1
    with_ties[tie_rows] = np.nan
    kept = ~tie_rows
    report = forecast_report(p, with_ties)
    assert report.n_ties == int(tie_rows.sum()) and report.n == int(kept.sum())
    assert report.accuracy == pytest.approx(skm.accuracy_score(y[kept], p[kept] > 0.5))
    assert report.log_loss == pytest.approx(skm.log_loss(y[kept], p[kept], labels=[0, 1]))
    assert report.brier == pytest.approx(skm.brier_score_loss(y[kept], p[kept]))
    assert report.roc_auc == pytest.approx(skm.roc_auc_score(y[kept], p[kept]))
    assert report.ece == pytest.approx(ece(p[kept], y[kept]))
    assert report.base_rate == pytest.approx(y[kept].mean())


def test_ties_counted_as_down_would_inflate_accuracy() -> None:
    """A down-leaning model gains accuracy if ties were labelled down; excluding them does not."""
    p = np.array([0.3, 0.3, 0.3, 0.7])
    y = np.array([np.nan, np.nan, 0.0, 0.0])
    assert accuracy(p, y) == 0.5
    assert accuracy(p, np.nan_to_num(y, nan=0.0)) == 0.75


def test_missing_predictions_are_excluded_and_counted() -> None:
    """NaN prob_up rows are counted as missing, not scored, and a tie row is counted as a tie."""
    p = np.array([np.nan, np.nan, 0.9, 0.2])
    y = np.array([1.0, np.nan, 1.0, 0.0])
    report = forecast_report(p, y)
    assert (report.n, report.n_ties, report.n_missing) == (2, 1, 1)
    assert report.accuracy == 1.0 and report.roc_auc == 1.0 and report.base_rate == 0.5


@given(_two_class_case())
def test_auc_in_unit_interval_and_flips_with_complement(
    case: tuple[np.ndarray, np.ndarray],
) -> None:
    """AUC lies in [0, 1] and AUC(1 - p) = 1 - AUC(p)."""
    p, y = case
    auc = roc_auc(p, y)
    assert 0.0 <= auc <= 1.0
    assert roc_auc(1.0 - p, y) == pytest.approx(1.0 - auc, abs=1e-12)


@given(_two_class_case())
def test_auc_perfect_separation_is_one(case: tuple[np.ndarray, np.ndarray]) -> None:
    """Scores that put every up above every down give AUC 1 (and 0 when reversed)."""
    _, y = case
    p = np.where(y == 1.0, 0.8, 0.2)
    assert roc_auc(p, y) == 1.0
    assert roc_auc(1.0 - p, y) == 0.0


@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=50))
def test_constant_half_forecast(outcomes: list[float]) -> None:
    """A constant 0.5 forecast has Brier 0.25 and log loss ln 2."""
    y = np.array(outcomes)
    p = np.full(y.size, 0.5)
    assert brier(p, y) == pytest.approx(0.25)
    assert log_loss(p, y) == pytest.approx(np.log(2.0))


@given(
    st.lists(st.sampled_from([0.0, 1.0, np.nan]), min_size=1, max_size=60),
    st.integers(0, 2**32 - 1),
)
def test_ties_counted_property(outcomes: list[float], seed: int) -> None:
    """n_ties is the number of NaN outcomes and n + n_ties covers every row."""
    y = np.array(outcomes)
    p = np.random.default_rng(seed).uniform(size=y.size)
    report = forecast_report(p, y)
    assert report.n_ties == int(np.isnan(y).sum())
    assert report.n + report.n_ties == y.size


def test_auc_nan_with_one_class() -> None:
    """AUC is undefined (NaN) when only one class remains after excluding ties."""
    assert np.isnan(roc_auc([0.2, 0.9, 0.4], [1.0, 1.0, np.nan]))


def test_constant_forecast_auc_is_half() -> None:
    """All scores tied -> AUC 0.5 (average ranks)."""
    assert roc_auc([0.6] * 6, [0, 1, 1, 0, 1, 1]) == 0.5


def test_half_probability_is_a_down_call() -> None:
    """prob_up exactly 0.5 is called down; just above is called up."""
    assert accuracy([0.5, 0.5], [0.0, 1.0]) == 0.5
    assert accuracy([0.5], [0.0]) == 1.0
    assert accuracy([0.5000001], [1.0]) == 1.0


def test_log_loss_clips_certain_mistakes() -> None:
    """A confident wrong forecast costs -ln(1e-12), not inf."""
    assert log_loss([0.0, 1.0], [1.0, 0.0]) == pytest.approx(-np.log(1e-12), rel=1e-6)
    assert log_loss([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1e-12, abs=1e-11)


def test_ece_small_for_calibrated_large_sample() -> None:
    """Outcomes drawn with probability prob_up give ECE near 0; a skewed forecast does not."""
    rng = np.random.default_rng(7)
    p = rng.uniform(size=200_000)
    y = (rng.uniform(size=p.size) < p).astype(np.float64)
    assert ece(p, y) < 0.01
    assert ece(p**2, y) > 0.1


def test_ece_hand_computed() -> None:
    """Two bins: |0 - 0.1| * 2/4 + |1 - 0.85| * 2/4 = 0.125; p = 1.0 falls in the last bin."""
    p = np.array([0.1, 0.1, 0.7, 1.0])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    assert ece(p, y, n_bins=2) == pytest.approx(0.5 * 0.1 + 0.5 * 0.15)


def test_empty_after_exclusion_gives_nan() -> None:
    """With only ties nothing is scored: every metric is NaN, n = 0."""
    report = forecast_report([0.3, 0.8], [np.nan, np.nan])
    assert report.n == 0 and report.n_ties == 2
    values = [report.accuracy, report.log_loss, report.brier, report.ece, report.roc_auc]
    assert all(np.isnan(v) for v in values)


@pytest.mark.parametrize(
    ("p", "y"),
    [
        ([0.2, 1.2], [0.0, 1.0]),
        ([0.2, -0.1], [0.0, 1.0]),
        ([0.2, np.inf], [0.0, 1.0]),
        ([0.2, 0.4], [0.0, 0.5]),
        ([0.2, 0.4], [0.0]),
        ([[0.2]], [[1.0]]),
    ],
)
def test_bad_input_raises(p: list[float], y: list[float]) -> None:
    """Out-of-range probabilities, non-binary outcomes and shape mismatches are rejected."""
    with pytest.raises(ValueError):
        forecast_report(p, y)


def test_majority_baseline_uses_training_base_rate() -> None:
    """The baseline predicts the training base rate: majority call, ECE = |test - train rate|."""
    train = np.array([1.0, 1.0, 1.0, 0.0, np.nan])  # rate 0.75 -> calls up
    test = np.array([1.0, 0.0, 0.0, 0.0, np.nan])
    report = majority_class_baseline(train, test)
    assert report.accuracy == 0.25 and report.n_ties == 1 and report.n == 4
    assert report.brier == pytest.approx((0.25**2 + 3 * 0.75**2) / 4)
    assert report.ece == pytest.approx(0.5)
    assert report.roc_auc == 0.5


def test_majority_baseline_ignores_test_labels_for_the_constant() -> None:
    """Changing the test labels never changes the constant learned from training."""
    train = np.array([0.0, 0.0, 1.0])
    a = majority_class_baseline(train, [1.0, 1.0, 1.0])
    b = majority_class_baseline(train, [0.0, 0.0, 0.0])
    assert a.accuracy == 0.0 and b.accuracy == 1.0
    assert a.log_loss == pytest.approx(-np.log(1 / 3)) and b.log_loss == pytest.approx(
        -np.log(2 / 3)
    )


def test_majority_baseline_needs_resolved_training_outcomes() -> None:
    """Training data made only of ties cannot define a baseline."""
    with pytest.raises(ValueError):
        majority_class_baseline([np.nan, np.nan], [1.0])


@settings(max_examples=50)
@given(_two_class_case())
def test_report_as_dict_round_trips(case: tuple[np.ndarray, np.ndarray]) -> None:
    """as_dict exposes every field of the report with the same values."""
    report = forecast_report(*case)
    d = report.as_dict()
    assert d["n"] == report.n and d["roc_auc"] == report.roc_auc and len(d) == 9
