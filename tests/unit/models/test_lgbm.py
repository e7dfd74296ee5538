"""ML_Classifier: LightGBM on the flattened feature window (titan.models.lgbm)."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from tests.conftest import shared_file
from tests.unit.models.contract import SAMPLE_FILE, contract_data, sample_table
from titan.config.models import LightGBMConfig
from titan.evaluation.metrics import roc_auc
from titan.features import feature_matrix
from titan.models.dataset import feature_columns, purge_gap, supervised
from titan.models.lgbm import DEFAULT_FEATURES, MLClassifier

FAST = LightGBMConfig(n_estimators=60, threads=1)


def _model(**overrides: object) -> MLClassifier:
    return MLClassifier(FAST.model_copy(update=overrides))


def test_input_is_39_features_at_lookback_lags_named_by_lag() -> None:
    model = _model(lookback=4)
    assert model.input_spec.lookback == 4 and len(DEFAULT_FEATURES) == 39
    assert "bb_middle" not in model.input_spec.features
    names = model.column_names()
    assert len(names) == 4 * 39
    assert names[0] == f"{DEFAULT_FEATURES[0]}_lag3" and names[-1] == f"{DEFAULT_FEATURES[-1]}_lag0"


def test_learns_a_real_signal_and_ranks_unseen_windows() -> None:
    """Labels driven by lag-0 RSI: the held-out AUC is far above chance."""
    model = _model()
    windows, _ = contract_data(model.input_spec, 4000)
    rsi = windows[:, -1, model.input_spec.features.index("rsi_14")]
    noise = np.random.default_rng(0).normal(scale=0.05, size=rsi.size)
    y = (rsi + noise > 0).astype(np.float64)
    model.fit(windows[:3000], y[:3000])
    assert roc_auc(model.predict(windows[3000:]).prob_up, y[3000:]) > 0.8


def test_early_stopping_on_noise_keeps_few_trees() -> None:
    model = _model(n_estimators=200)
    windows, _ = contract_data(model.input_spec, 3000)
    model.fit(windows, (np.random.default_rng(1).random(3000) < 0.5).astype(np.float64))
    booster = lgb.Booster(model_str=model.state_dict()["booster"])
    assert 1 <= booster.num_trees() < 100


def test_parameter_count_is_the_number_of_tree_nodes() -> None:
    model = _model()
    windows, y = contract_data(model.input_spec, 2000)
    model.fit(windows, y)
    trees = lgb.Booster(model_str=model.state_dict()["booster"]).dump_model()["tree_info"]
    assert model.parameter_count() == sum(2 * t["num_leaves"] - 1 for t in trees) > 0


def test_booster_is_trained_with_deterministic_single_thread_params() -> None:
    model = _model(seed=5)
    windows, y = contract_data(model.input_spec, 2000)
    model.fit(windows, y)
    text = model.state_dict()["booster"]
    for param in ("[deterministic: 1]", "[num_threads: 1]", "[seed: 5]", "[force_col_wise: 1]"):
        assert param in text


def test_bins_follow_the_config_and_the_seed_draws_the_bin_sample() -> None:
    """At most max_bin - 1 split thresholds per column; the bin edges come from a seeded
    sample of bin_construct_sample_cnt rows (without bagging or feature sampling, only
    the sample differs between seeds)."""
    windows, y = contract_data(_model().input_spec, 3000)
    coarse = _model(max_bin=4)
    coarse.fit(windows, y)
    text = coarse.state_dict()["booster"]
    assert "[max_bin: 4]" in text and "[bin_construct_sample_cnt: 1000]" in text
    thresholds: dict[int, set[float]] = {}
    for tree in lgb.Booster(model_str=text).dump_model()["tree_info"]:
        _collect_thresholds(tree["tree_structure"], thresholds)
    assert thresholds and max(len(t) for t in thresholds.values()) <= 3
    no_sampling = {"bagging_fraction": 1.0, "feature_fraction": 1.0}
    probs = []
    for seed in (0, 1):
        model = _model(seed=seed, **no_sampling)
        model.fit(windows, y)
        probs.append(model.predict(windows).prob_up)
    assert not np.array_equal(probs[0], probs[1])


def _collect_thresholds(node: dict[str, Any], out: dict[int, set[float]]) -> None:
    """Every split threshold in a dumped tree, by column."""
    if "split_feature" in node:
        out.setdefault(node["split_feature"], set()).add(node["threshold"])
        _collect_thresholds(node["left_child"], out)
        _collect_thresholds(node["right_child"], out)


def test_bins_and_trees_do_not_read_the_validation_tail() -> None:
    """Scaling the tail's features (the newest 10 % of windows are in the 20 % tail) may
    change where early stopping ends, never the trees grown before: the training part
    is binned on its own rows and the tail only reuses its edges."""
    windows, y = contract_data(_model().input_spec, 3000)
    moved = windows.copy()
    moved[2700:] = moved[2700:] * 1000.0 + 5.0
    trees = []
    for data in (windows, moved):
        model = _model()
        model.fit(data, y)
        text = model.state_dict()["booster"]
        trees.append(text.split("end of trees")[0].split("Tree=")[1:])
    shared = min(len(trees[0]), len(trees[1]))
    assert shared >= 1 and trees[0][:shared] == trees[1][:shared]


def test_refit_replaces_the_previous_model() -> None:
    windows, y = contract_data(_model().input_spec, 4000)
    refit, fresh = _model(), _model()
    refit.fit(windows[:2000], y[:2000])
    refit.fit(windows[2000:], y[2000:])
    fresh.fit(windows[2000:], y[2000:])
    np.testing.assert_array_equal(refit.predict(windows).prob_up, fresh.predict(windows).prob_up)


def test_too_few_samples_or_one_class_leave_it_unfitted() -> None:
    model = _model(min_samples=500)
    windows, y = contract_data(model.input_spec, 499)
    model.fit(windows, np.where(np.isnan(y), 0.0, y))
    assert not model.is_fitted and model.parameter_count() == 0
    model.fit(*contract_data(model.input_spec, 1000)[:1], np.ones(1000))
    assert not model.is_fitted and np.isnan(model.predict(windows[:3]).prob_up).all()


def test_calibrated_variant_round_trips_with_its_calibrator() -> None:
    model = _model(calibrate=True)
    windows, y = contract_data(model.input_spec, 3000)
    model.fit(windows[:2500], y[:2500])
    state = model.state_dict()
    assert state["calibrator"] is not None and state["calibrator"]["fitted"]
    restored = _model(calibrate=True)
    restored.load_state_dict(state)
    out = model.predict(windows[2500:])
    np.testing.assert_array_equal(out.prob_up, restored.predict(windows[2500:]).prob_up)
    assert np.isfinite(out.prob_up).all()


def test_checkpoint_for_another_lookback_is_refused() -> None:
    model = _model(lookback=2)
    with pytest.raises(ValueError, match="lookback"):
        model.load_state_dict(_model(lookback=3).state_dict())


def test_future_candles_do_not_change_a_fit_ending_at_t() -> None:
    """Fitted on labels resolved by row t, predictions for windows <= t are identical
    whether the table ends at t or holds 2000 more candles."""
    t = 7000
    frame = pl.read_parquet(SAMPLE_FILE).head(t + 2001)
    model = _model()
    cols, lookback = feature_columns(model.input_spec), model.input_spec.lookback
    fits = []
    for candles in (frame, frame.head(t + 1)):
        table = feature_matrix(candles)[:, cols]
        data = supervised(table, candles.get_column("close").to_numpy(), lookback)
        past = data.known_at(t)
        m = _model()
        m.fit(past.windows, past.labels)
        fits.append(m.predict(data.windows[data.end_rows <= t][-1000:]).prob_up)
        assert past.end_rows.max() == t - 1
    assert np.isfinite(fits[0]).all()
    np.testing.assert_array_equal(fits[0], fits[1])


def _walk_forward_report(
    table: np.ndarray, close: np.ndarray, folds: list[tuple[int, int]], train: int
) -> tuple[float, float, int, np.ndarray]:
    """Fit on `train` samples before each (test_start, test_len) fold, gap purged."""
    model = MLClassifier(LightGBMConfig(threads=1))
    data = supervised(table[:, feature_columns(model.input_spec)], close, model.input_spec.lookback)
    gap = purge_gap(1, model.input_spec.lookback)
    probs, outcomes = [], []
    for start, length in folds:
        past = data.subset(range(start - gap - train, start - gap))
        model.fit(past.windows, past.labels)
        test = data.subset(range(start, start + length))
        assert test.end_rows.min() - past.end_rows.max() > gap
        probs.append(model.predict(test.windows).prob_up)
        outcomes.append(test.labels)
    p, y = np.concatenate(probs), np.concatenate(outcomes)
    scored = ~np.isnan(y)
    accuracy = float(np.mean((p[scored] > 0.5) == (y[scored] == 1.0)))
    return roc_auc(p, y), accuracy, int(scored.sum()), p


def test_walk_forward_on_bundled_btc_sample_is_honest(capsys: pytest.CaptureFixture[str]) -> None:
    """Trained on past data only (10080-candle window, purge gap), evaluated on unseen
    days; AUC is reported, and an AUC >= 0.6 on 1m BTC would mean a leak."""
    table, close = sample_table()
    folds = [(10_200 + k * 6480, 1440) for k in range(5)]
    auc, accuracy, n, p = _walk_forward_report(table, close, folds, train=10_080)
    with capsys.disabled():
        print(
            f"\nML_Classifier walk-forward, bundled BTC 1m: AUC {auc:.4f} acc {accuracy:.4f} n {n}"
        )
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    assert 0.4 < auc < 0.6


@pytest.mark.shared_data
def test_walk_forward_on_shared_btc_1m_set_is_honest(capsys: pytest.CaptureFixture[str]) -> None:
    """Ten unseen days spread over the 130k-candle set; same honesty bounds."""
    frame = pl.read_parquet(shared_file("binance_BTCUSDT_1m.parquet"))
    table, close = feature_matrix(frame), frame.get_column("close").to_numpy()
    folds = [(10_200 + k * 12_000, 1440) for k in range(10)]
    auc, accuracy, n, p = _walk_forward_report(table, close, folds, train=10_080)
    with capsys.disabled():
        print(
            f"\nML_Classifier walk-forward, shared BTC 1m: AUC {auc:.4f} acc {accuracy:.4f} n {n}"
        )
    assert np.isfinite(p).all()
    assert 0.4 < auc < 0.6
