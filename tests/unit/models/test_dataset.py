"""Supervised dataset builder: labels, windows, walk-forward splits (titan.models.dataset)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titan.features import FEATURE_NAMES, WARMUP
from titan.models.base import InputSpec
from titan.models.dataset import (
    as_windows,
    feature_columns,
    first_complete_row,
    labels,
    purge_gap,
    sliding_windows,
    supervised,
    walk_forward,
)


def test_labels_are_up_down_tie_and_unknown_future() -> None:
    close = np.array([1.0, 2.0, 1.5, 1.5, 3.0])
    np.testing.assert_array_equal(labels(close, 1), [1.0, 0.0, np.nan, 1.0, np.nan])
    np.testing.assert_array_equal(labels(close, 2), [1.0, 0.0, 1.0, np.nan, np.nan])


def test_series_shorter_than_the_horizon_has_only_unknown_labels() -> None:
    assert np.isnan(labels(np.array([1.0, 2.0]), 3)).all()
    with pytest.raises(ValueError, match="horizon"):
        labels(np.array([1.0, 2.0]), 0)


@settings(max_examples=60, deadline=None)
@given(
    close=st.lists(st.floats(1.0, 2.0), min_size=3, max_size=60),
    horizon=st.integers(1, 5),
    data=st.data(),
)
def test_labels_never_read_beyond_their_horizon(
    close: list[float], horizon: int, data: st.DataObject
) -> None:
    """Label t depends on close[: t + horizon + 1] only: rewriting later closes leaves it."""
    c = np.asarray(close)
    t = data.draw(st.integers(0, c.size - 1))
    changed = c.copy()
    changed[t + horizon + 1 :] = data.draw(st.floats(1.0, 2.0))
    np.testing.assert_array_equal(labels(c, horizon)[: t + 1], labels(changed, horizon)[: t + 1])


def _table(n: int = 30, warmup: int = 4, features: int = 3) -> np.ndarray:
    table = np.arange(n * features, dtype=np.float64).reshape(n, features)
    table[:warmup, 1] = np.nan
    return table


def test_sliding_windows_skip_warm_up_and_hold_consecutive_rows() -> None:
    table = _table()
    windows = sliding_windows(table, lookback=3)
    assert first_complete_row(table, 3) == 6
    assert windows.shape == (24, 3, 3)
    np.testing.assert_array_equal(windows[0], table[4:7])
    np.testing.assert_array_equal(windows[-1], table[-3:])
    assert np.isfinite(windows).all()


def test_explicit_first_row_too_early_for_the_lookback_is_an_error() -> None:
    with pytest.raises(ValueError, match="no room"):
        sliding_windows(_table(), lookback=3, first=1)


def test_supervised_labels_belong_to_each_window_end_row() -> None:
    table = _table()
    close = np.cos(np.arange(30.0))
    data = supervised(table, close, lookback=2, horizon=3)
    np.testing.assert_array_equal(data.end_rows, np.arange(5, 30))
    np.testing.assert_array_equal(data.labels, labels(close, 3)[5:])
    np.testing.assert_array_equal(data.windows[:, -1, :], table[data.end_rows])


def test_known_at_keeps_only_labels_resolved_by_that_row() -> None:
    data = supervised(_table(), np.cos(np.arange(30.0)), lookback=2, horizon=3)
    known = data.known_at(20)
    assert known.end_rows.max() == 17 and known.end_rows.min() == 5
    assert np.isfinite(known.labels[~np.isnan(known.labels)]).all()
    assert len(data.known_at(7)) == 0


def test_walk_forward_rolls_a_fixed_train_window_forward() -> None:
    splits = list(walk_forward(100, train=40, test=20, gap=5))
    assert [(s.train, s.test) for s in splits] == [
        (range(0, 40), range(45, 65)),
        (range(20, 60), range(65, 85)),
        (range(40, 80), range(85, 100)),
    ]


def test_expanding_walk_forward_keeps_all_past_samples() -> None:
    splits = list(walk_forward(100, train=40, test=30, gap=2, step=30, expanding=True))
    assert [s.train.start for s in splits] == [0, 0]
    assert [s.train.stop for s in splits] == [40, 70]


def test_walk_forward_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="train"):
        list(walk_forward(100, train=0, test=10, gap=1))
    with pytest.raises(ValueError, match="gap"):
        list(walk_forward(100, train=10, test=10, gap=-1))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 400),
    train=st.integers(1, 100),
    test=st.integers(1, 60),
    gap=st.integers(0, 30),
    step=st.none() | st.integers(1, 80),
    expanding=st.booleans(),
)
def test_walk_forward_splits_never_leak(
    n: int, train: int, test: int, gap: int, step: int | None, expanding: bool
) -> None:
    """train.stop + gap <= test.start, in bounds, non-empty, chronological, no overlap."""
    previous_test_start = -1
    for split in walk_forward(n, train, test, gap, step, expanding):
        assert split.train.stop + gap <= split.test.start
        assert 0 <= split.train.start < split.train.stop
        assert split.test.start < split.test.stop <= n
        assert len(split.test) <= test
        assert len(split.train) == (split.train.stop if expanding else train)
        assert not set(split.train) & set(split.test)
        assert split.test.start > previous_test_start
        previous_test_start = split.test.start


@settings(max_examples=100, deadline=None)
@given(
    horizon=st.integers(1, 5),
    lookback=st.integers(1, 6),
    train=st.integers(5, 40),
    test=st.integers(1, 20),
)
def test_purge_gap_keeps_every_training_candle_out_of_test_samples(
    horizon: int, lookback: int, train: int, test: int
) -> None:
    """No candle read by a training sample (its label, end row + horizon) is read by a
    test sample (its window's rows and the WARMUP candles their indicators look back)."""
    table = np.ones((400, 2))
    data = supervised(table, np.arange(400.0), lookback, horizon, first=lookback - 1)
    for split in walk_forward(len(data), train, test, purge_gap(horizon, lookback)):
        last_train_candle = data.end_rows[split.train.stop - 1] + horizon
        first_test_candle = data.end_rows[split.test.start] - lookback + 1 - WARMUP
        assert last_train_candle < first_test_candle


def test_purge_gap_is_horizon_plus_window_plus_the_longest_feature_lookback() -> None:
    assert WARMUP == 49  # sma_50, volume_sma
    assert purge_gap(1, 30) == 1 + 30 + 49 == 80
    assert purge_gap(2, 30, extra=5) == 86


def test_as_windows_keeps_the_newest_lookback_steps_and_checks_shape() -> None:
    spec = InputSpec(("a", "b"), lookback=2)
    windows = np.arange(24.0).reshape(2, 6, 2)
    np.testing.assert_array_equal(as_windows(windows, spec), windows[:, 4:, :])
    with pytest.raises(ValueError, match="expected windows"):
        as_windows(np.zeros((2, 1, 2)), spec)
    with pytest.raises(ValueError, match="expected windows"):
        as_windows(np.zeros((2, 2, 3)), spec)


def test_all_nan_or_short_table_gives_no_windows() -> None:
    assert sliding_windows(np.full((10, 2), np.nan), lookback=3).shape == (0, 3, 2)
    assert sliding_windows(np.ones((2, 2)), lookback=3, first=2).shape == (0, 3, 2)


def test_tail_of_known_samples_is_the_trailing_training_window() -> None:
    data = supervised(_table(), np.cos(np.arange(30.0)), lookback=2, horizon=1)
    window = data.known_at(20).tail(8)
    np.testing.assert_array_equal(window.end_rows, np.arange(12, 20))
    assert len(data.tail(1000)) == len(data)


def test_feature_columns_map_a_spec_onto_the_feature_table() -> None:
    spec = InputSpec(("rsi_14", "open", "adx_14"), lookback=1)
    np.testing.assert_array_equal(feature_columns(spec), [14, 0, 39])
    assert [FEATURE_NAMES[i] for i in feature_columns(spec)] == list(spec.features)
    with pytest.raises(ValueError, match="not in the table"):
        feature_columns(InputSpec(("rsi_14", "nope"), lookback=1))
