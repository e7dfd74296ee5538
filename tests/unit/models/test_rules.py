"""Rule models: TrendVIC, Oscillator, VolumeMetrix (titan.models.rules)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.unit.models.contract import contract_data, sample_table
from titan.evaluation.metrics import roc_auc
from titan.models.calibration import sigmoid
from titan.models.dataset import feature_columns, purge_gap, supervised, walk_forward
from titan.models.rules import Oscillator, RuleModel, TrendVIC, VolumeMetrix

UPTREND = {
    "ema_12": -0.002,
    "ema_26": -0.004,
    "macd_hist": 0.0008,
    "sma_50": -0.008,
    "atr_14": 0.001,
    "adx_14": 0.45,
}
OVERBOUGHT = {"rsi_14": 0.3, "stoch_k": 0.45, "cci_20": 2.5, "bb_pctb": 0.6}
INFLOW = {"obv": 0.6, "ad": 0.5, "mfi_14": 0.35, "vwap_20": -0.003, "atr_14": 0.001}


def _window(model: RuleModel, values: dict[str, float]) -> np.ndarray:
    return np.array([[[values[name] for name in model.input_spec.features]]])


def _negated(values: dict[str, float], keep: tuple[str, ...] = ()) -> dict[str, float]:
    return {k: v if k in keep else -v for k, v in values.items()}


def _fit_where_score_predicts(model: RuleModel, sign: float, n: int = 3000) -> None:
    """Fit on real feature windows with labels drawn from P(up) = sigmoid(sign * 4 * score)."""
    windows, _ = contract_data(model.input_spec, n)
    p = sigmoid(sign * 4.0 * model.score(windows))
    model.fit(windows, (np.random.default_rng(0).random(n) < p).astype(np.float64))


def test_strong_uptrend_scores_positive_and_downtrend_negative() -> None:
    model = TrendVIC()
    assert model.score(_window(model, UPTREND))[0] > 0.5
    assert model.score(_window(model, _negated(UPTREND, ("atr_14", "adx_14"))))[0] < -0.5


def test_trend_vic_prob_up_above_half_for_uptrend_after_fitting_where_trend_predicts_up() -> None:
    model = TrendVIC()
    _fit_where_score_predicts(model, +1.0)
    up = model.predict(_window(model, UPTREND))
    down = model.predict(_window(model, _negated(UPTREND, ("atr_14", "adx_14"))))
    assert up.prob_up[0] > 0.6 and down.prob_up[0] < 0.4
    assert up.confidence[0] == pytest.approx(abs(2 * up.prob_up[0] - 1))


def test_trend_vic_learns_the_opposite_sign_when_trends_revert() -> None:
    model = TrendVIC()
    _fit_where_score_predicts(model, -1.0)
    assert model.predict(_window(model, UPTREND)).prob_up[0] < 0.4


def test_weak_adx_scales_the_trend_score_down_to_zero() -> None:
    model = TrendVIC()
    strong = model.score(_window(model, UPTREND))[0]
    half = model.score(_window(model, {**UPTREND, "adx_14": 0.125}))[0]
    flat = model.score(_window(model, {**UPTREND, "adx_14": 0.0}))[0]
    assert half == pytest.approx(strong / 2) and flat == 0.0


def test_oscillator_overbought_gives_lower_prob_than_oversold() -> None:
    model = Oscillator()
    assert model.score(_window(model, OVERBOUGHT))[0] < -0.8
    _fit_where_score_predicts(model, +1.0)
    high = model.predict(_window(model, OVERBOUGHT)).prob_up[0]
    low = model.predict(_window(model, _negated(OVERBOUGHT))).prob_up[0]
    assert high < 0.5 < low


def test_volume_metrix_inflow_gives_higher_prob_than_outflow() -> None:
    model = VolumeMetrix()
    assert model.score(_window(model, INFLOW))[0] > 0.5
    _fit_where_score_predicts(model, +1.0)
    inflow = model.predict(_window(model, INFLOW)).prob_up[0]
    outflow = model.predict(_window(model, _negated(INFLOW, ("atr_14",)))).prob_up[0]
    assert outflow < 0.5 < inflow


@pytest.mark.parametrize("cls", [TrendVIC, Oscillator, VolumeMetrix])
def test_unfitted_rule_model_is_missing_but_reports_its_score(cls: type[RuleModel]) -> None:
    model = cls()
    windows, _ = contract_data(model.input_spec, 20)
    out = model.predict(windows)
    assert np.isnan(out.prob_up).all() and (out.confidence == 0).all()
    assert np.isfinite(out.extras["score"]).all()
    assert not model.is_fitted


@pytest.mark.parametrize("cls", [TrendVIC, Oscillator, VolumeMetrix])
def test_rule_fit_recovers_the_sign_on_real_windows(cls: type[RuleModel]) -> None:
    """After fitting where the score predicts up, prob_up rises with the score."""
    model = cls()
    _fit_where_score_predicts(model, +1.0)
    windows, _ = contract_data(model.input_spec, 500)
    out = model.predict(windows)
    order = np.argsort(out.extras["score"])
    assert np.all(np.diff(out.prob_up[order]) >= 0)
    assert model.calibrator.coef is not None and model.calibrator.coef[0] > 0


@pytest.mark.parametrize("cls", [TrendVIC, Oscillator, VolumeMetrix])
def test_too_few_labelled_windows_leave_the_model_unfitted(cls: type[RuleModel]) -> None:
    model = cls(min_samples=100)
    windows, labels = contract_data(model.input_spec, 99)
    model.fit(windows, np.where(np.isnan(labels), 1.0, labels))
    assert not model.is_fitted


@pytest.mark.parametrize("cls", [TrendVIC, Oscillator, VolumeMetrix])
def test_longer_windows_use_their_last_timestep(cls: type[RuleModel]) -> None:
    model = cls()
    windows, _ = contract_data(model.input_spec, 10)
    padded = np.concatenate([np.full_like(windows, np.nan), windows], axis=1)
    np.testing.assert_array_equal(model.score(padded), model.score(windows))


def test_wrong_feature_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected windows of shape"):
        TrendVIC().predict(np.zeros((2, 1, 3)))


@settings(max_examples=60, deadline=None)
@given(
    cls=st.sampled_from([TrendVIC, Oscillator, VolumeMetrix]),
    values=arrays(np.float64, 6, elements=st.floats(-1e9, 1e9)),
)
def test_scores_are_bounded_in_minus_one_one_for_any_finite_features(
    cls: type[RuleModel], values: np.ndarray
) -> None:
    model = cls()
    n = len(model.input_spec.features)
    score = model.score(values[:n].reshape(1, 1, n))
    assert np.isfinite(score).all() and -1.0 <= score[0] <= 1.0


@pytest.mark.parametrize("cls", [TrendVIC, Oscillator, VolumeMetrix])
def test_walk_forward_on_bundled_btc_sample_is_calibrated_and_honest(
    cls: type[RuleModel], capsys: pytest.CaptureFixture[str]
) -> None:
    """Refit every 1440 candles on the past 10080 (purged); probabilities stay near 0.5
    and the unseen-data AUC is reported (>= 0.6 on 1m BTC would mean a leak)."""

    table, close = sample_table()
    model = cls()
    data = supervised(table[:, feature_columns(model.input_spec)], close, lookback=1)
    probs, outcomes = [], []
    for split in walk_forward(len(data), 10_080, 1440, purge_gap(1, 1)):
        model.fit(data.windows[split.train], data.labels[split.train])
        probs.append(model.predict(data.windows[split.test]).prob_up)
        outcomes.append(data.labels[split.test])
    p, y = np.concatenate(probs), np.concatenate(outcomes)
    auc = roc_auc(p, y)
    with capsys.disabled():
        print(
            f"\n{model.name} walk-forward, bundled BTC 1m: AUC {auc:.4f} n {np.isfinite(y).sum()}"
        )
    assert np.isfinite(p).all() and np.mean(np.abs(p - 0.5)) < 0.1
    assert 0.4 < auc < 0.6
