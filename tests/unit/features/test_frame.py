"""Feature tables from polars candle frames."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.unit.features.helpers import random_walk
from titan.features import FEATURE_NAMES, compute_features, feature_frame, feature_matrix


def _frame(n: int) -> pl.DataFrame:
    o, h, low, c, v = random_walk(n, seed=61)
    ts = np.arange(n, dtype=np.int64) * 60_000
    return pl.DataFrame(
        {"timestamp": ts, "open": o, "high": h, "low": low, "close": c, "volume": v}
    )


def test_feature_frame_has_timestamp_then_the_forty_feature_columns() -> None:
    frame = _frame(120)
    features = feature_frame(frame)
    assert features.columns == ["timestamp", *FEATURE_NAMES]
    assert features.get_column("timestamp").to_list() == frame.get_column("timestamp").to_list()


def test_feature_matrix_equals_compute_features_on_the_columns() -> None:
    frame = _frame(120)
    columns = (
        frame.get_column(name).to_numpy() for name in ("open", "high", "low", "close", "volume")
    )
    np.testing.assert_array_equal(feature_matrix(frame), compute_features(*columns))


def test_feature_matrix_rejects_a_frame_without_candle_columns() -> None:
    with pytest.raises(ValueError, match="volume"):
        feature_matrix(_frame(10).drop("volume"))
