"""Candle series generators and the streaming-vs-batch oracle assertion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from titan.features import FEATURE_NAMES, WARMUPS, StreamingFeatures
from titan.features.spec import FLOOR, TOLERANCE

Array = NDArray[np.float64]
Candles = tuple[Array, Array, Array, Array, Array]


def random_walk(
    n: int,
    seed: int,
    level: float = 100.0,
    tick: float | None = None,
    flat_runs: bool = True,
    zero_volume: bool = True,
) -> Candles:
    """A seeded OHLCV random walk, optionally tick-rounded (ties), with flat stretches
    (open == high == low == close for 5..80 candles) and zero-volume candles/stretches."""
    rng = np.random.default_rng(seed)
    close = level * np.exp(np.cumsum(rng.normal(0.0, 2e-3, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 1e-3, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 1e-3, n)))
    volume = rng.lognormal(0.0, 1.0, n)
    if tick is not None:
        open_, high, low, close = (np.round(x / tick) * tick for x in (open_, high, low, close))
        high = np.maximum.reduce([open_, high, low, close])
        low = np.minimum.reduce([open_, high, low, close])
    if flat_runs:
        _flatten(rng, n, open_, high, low, close)
    if zero_volume:
        for start in rng.integers(0, max(1, n - 100), max(1, n // 500)):
            volume[start : start + int(rng.integers(5, 80))] = 0.0
        volume[rng.random(n) < 0.05] = 0.0
    return open_, high, low, close, volume


def _flatten(rng: np.random.Generator, n: int, *prices: Array) -> None:
    close = prices[-1]
    for start in rng.integers(0, max(1, n - 100), max(1, n // 500)):
        stop, level = start + int(rng.integers(5, 80)), close[start]
        for series in prices:
            series[start:stop] = level


def load_candles(path: Path) -> Candles:
    """The five candle columns of a Parquet file."""
    frame = pl.read_parquet(path)
    open_, high, low, close, volume = (
        frame.get_column(name).to_numpy() for name in ("open", "high", "low", "close", "volume")
    )
    return open_, high, low, close, volume


def stream_table(candles: Candles) -> Array:
    """Feed the candles one by one through a fresh StreamingFeatures; (n, 40) rows."""
    state = StreamingFeatures()
    columns = [series.tolist() for series in candles]
    return np.array([state.update(*candle) for candle in zip(*columns, strict=True)]).reshape(
        -1, len(FEATURE_NAMES)
    )


def assert_matches_batch(stream: Array, batch: Array) -> None:
    """The streaming contract: same NaN mask (exactly the warm-up rows) and, after each
    feature's warm-up, |s - b| <= TOLERANCE * max(|b|, FLOOR)."""
    assert stream.shape == batch.shape
    np.testing.assert_array_equal(np.isnan(stream), np.isnan(batch))
    for column, name in enumerate(FEATURE_NAMES):
        s, b = stream[WARMUPS[name] :, column], batch[WARMUPS[name] :, column]
        bad = np.flatnonzero(np.abs(s - b) > TOLERANCE * np.maximum(np.abs(b), FLOOR))
        assert bad.size == 0, (
            f"{name}: {bad.size} rows differ, first at {bad[0]}: {s[bad[0]]} vs {b[bad[0]]}"
        )
