"""Causality: a row never depends on candles after it, in batch or streaming."""

from __future__ import annotations

import numpy as np

from tests.unit.features.helpers import random_walk, stream_table
from titan.features import compute_features


def test_batch_rows_do_not_change_when_future_candles_are_appended() -> None:
    candles = random_walk(1500, seed=31)
    full = compute_features(*candles)
    for cut in (60, 333, 1000):
        prefix = compute_features(*(x[:cut] for x in candles))
        np.testing.assert_array_equal(prefix, full[:cut])


def test_batch_rows_before_a_changed_candle_are_unchanged() -> None:
    candles = random_walk(800, seed=32)
    altered = tuple(x.copy() for x in candles)
    for series in altered[:4]:
        series[500:] *= 1.5
    altered[4][500:] *= 7.0
    before, after = compute_features(*candles), compute_features(*altered)
    np.testing.assert_array_equal(before[:500], after[:500])
    assert not np.array_equal(before[500:], after[500:])


def test_streaming_rows_do_not_change_when_future_candles_are_appended() -> None:
    candles = random_walk(600, seed=33)
    full = stream_table(candles)
    prefix = stream_table(tuple(x[:250] for x in candles))  # type: ignore[arg-type]
    np.testing.assert_array_equal(prefix, full[:250])
