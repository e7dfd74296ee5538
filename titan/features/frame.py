"""Feature tables from candle DataFrames (the ``titan features`` CLI, model training).

The frame must have the columns ``open, high, low, close, volume`` (any numeric dtype)
for consecutive candles of one symbol, oldest first; ``timestamp`` is carried over when
present. Reading and writing files is the caller's business.
"""

from __future__ import annotations

import polars as pl

from titan.features.batch import compute_features
from titan.features.kernels import Array
from titan.features.spec import FEATURE_NAMES

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")


def feature_matrix(frame: pl.DataFrame) -> Array:
    """The (n, 40) normalised feature table of ``frame``'s candles."""
    missing = [name for name in CANDLE_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"candle frame lacks columns {missing}")
    series = [frame.get_column(name).cast(pl.Float64).to_numpy() for name in CANDLE_COLUMNS]
    return compute_features(*series)


def feature_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``timestamp`` (when present) plus one Float64 column per feature, NaN in warm-up."""
    table = feature_matrix(frame)
    features = pl.DataFrame(table, schema=list(FEATURE_NAMES), orient="row")
    if "timestamp" in frame.columns:
        return features.insert_column(0, frame.get_column("timestamp"))
    return features
