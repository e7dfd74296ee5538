"""Training data: a stored series -> feature table -> windows with labels and returns.

`Samples` holds, for every window end row t (chronological): the window of feature rows
``t - lookback + 1 .. t`` (a read-only strided view, no copy), the direction label of
``close[t + h]`` vs ``close[t]`` (NaN tie/unknown), the next-period return
``close[t + h] / close[t] - 1`` (NaN when unknown) and the end candle's open time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from titan.data.store import CandleStore, SeriesId
from titan.features import feature_matrix
from titan.models.base import FloatArray
from titan.models.dataset import IntArray, supervised


@dataclass(frozen=True)
class Series:
    """One symbol's feature table (n, 40), closes and open times (ms), oldest first."""

    symbol: str
    table: FloatArray
    close: FloatArray
    ts: IntArray


def load_series(
    store: Path, exchange: str, symbol: str, timeframe: str, last: int | None = None
) -> Series:
    """Read a stored series (the newest `last` candles when given) and compute features."""
    frame = CandleStore(store).read(SeriesId(exchange, symbol, timeframe))
    if frame.height == 0:
        raise FileNotFoundError(f"no stored candles for {symbol} {timeframe} on {exchange}")
    if last is not None:
        frame = frame.tail(last)
    close = frame.get_column("close").to_numpy().astype(np.float64)
    ts = frame.get_column("timestamp").to_numpy().astype(np.int64)
    return Series(symbol, feature_matrix(frame), close, ts)


def next_returns(close: FloatArray, horizon: int = 1) -> FloatArray:
    """``close[t + h] / close[t] - 1``; NaN where ``t + h`` is past the end."""
    c = np.asarray(close, dtype=np.float64)
    out = np.full(c.shape[0], np.nan)
    if c.shape[0] > horizon:
        out[:-horizon] = c[horizon:] / c[:-horizon] - 1.0
    return out


@dataclass(frozen=True)
class Samples:
    windows: FloatArray
    labels: FloatArray
    returns: FloatArray
    end_rows: IntArray
    ts: IntArray
    horizon: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: range | slice | IntArray) -> Samples:
        """Rows `index`; a range or slice stays a view (no copy of the windows)."""
        idx = slice(index.start, index.stop, index.step) if isinstance(index, range) else index
        return Samples(
            self.windows[idx],
            self.labels[idx],
            self.returns[idx],
            self.end_rows[idx],
            self.ts[idx],
            self.horizon,
        )


def samples(series: Series, lookback: int, horizon: int = 1) -> Samples:
    """Every complete window of `series` with its label, return and end time."""
    data = supervised(series.table, series.close, lookback, horizon)
    returns = next_returns(series.close, horizon)[data.end_rows]
    return Samples(
        data.windows, data.labels, returns, data.end_rows, series.ts[data.end_rows], horizon
    )


def pooled(parts: Sequence[Samples]) -> Samples:
    """Several symbols' samples merged in time order (stable: ties keep symbol order)."""
    if len(parts) == 1:
        return parts[0]
    ts = np.concatenate([p.ts for p in parts])
    order = np.argsort(ts, kind="stable")
    return Samples(
        np.concatenate([p.windows for p in parts])[order],
        np.concatenate([p.labels for p in parts])[order],
        np.concatenate([p.returns for p in parts])[order],
        np.concatenate([p.end_rows for p in parts])[order],
        ts[order],
        parts[0].horizon,
    )
