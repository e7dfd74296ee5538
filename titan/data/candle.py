"""The Candle domain type and its boundary validation.

Everything that enters Titan from outside (files, REST, websockets) is parsed into a
`Candle` by `parse_candle` and checked by `CandleValidator` before the core sees it.
Rejections are values (`Rejection`), never exceptions: the caller logs and counts them.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed OHLCV candle. `ts` is the candle's open time in ms since the epoch (UTC)."""

    symbol: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class Reason(StrEnum):
    """Why a candle was rejected at the boundary."""

    MALFORMED = "malformed"
    NOT_FINITE = "not_finite"
    NON_POSITIVE_PRICE = "non_positive_price"
    HIGH_BELOW_LOW = "high_below_low"
    OPEN_CLOSE_OUTSIDE_RANGE = "open_close_outside_range"
    NEGATIVE_VOLUME = "negative_volume"
    MISALIGNED_TIMESTAMP = "misaligned_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE = "duplicate"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NOT_CLOSED = "not_closed"


# Plausible open times: from the epoch up to (not including) 2200-01-01 UTC, in ms. Beyond
# that a value is garbage (and past 2**63 it no longer fits the store's int64 column).
MAX_TS_MS = 7_258_118_400_000


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    symbol: str
    ts: int | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing candles between two accepted ones: `missing` candles starting at `start_ts`."""

    symbol: str
    start_ts: int
    missing: int


def parse_candle(symbol: str, row: Sequence[Any]) -> Candle | Rejection:
    """Parse a ccxt-style row `[ts, open, high, low, close, volume]` into a Candle."""
    try:
        if not isinstance(row, list | tuple) or len(row) < 6:
            raise ValueError("expected a list of 6 fields")
        ts = _as_int(row[0])
        values = [_as_float(value) for value in row[1:6]]
    except (TypeError, ValueError, OverflowError) as exc:
        return Rejection(Reason.MALFORMED, symbol, None, str(exc)[:200])
    return Candle(symbol, ts, *values)


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("timestamp is a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("timestamp is not an integer")
        return int(value)
    return int(value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def check_values(candle: Candle, timeframe_ms: int) -> Reason | None:
    """Stateless checks on one candle; the first failing rule's reason, or None."""
    prices = (candle.open, candle.high, candle.low, candle.close)
    if not all(math.isfinite(value) for value in (*prices, candle.volume)):
        return Reason.NOT_FINITE
    if min(prices) <= 0.0:
        return Reason.NON_POSITIVE_PRICE
    if candle.high < candle.low:
        return Reason.HIGH_BELOW_LOW
    if not (candle.low <= candle.open <= candle.high and candle.low <= candle.close <= candle.high):
        return Reason.OPEN_CLOSE_OUTSIDE_RANGE
    if candle.volume < 0.0:
        return Reason.NEGATIVE_VOLUME
    if not 0 <= candle.ts < MAX_TS_MS:
        return Reason.TIMESTAMP_OUT_OF_RANGE
    if candle.ts % timeframe_ms != 0:
        return Reason.MISALIGNED_TIMESTAMP
    return None


def surely_valid(rows: np.ndarray, timeframe_ms: int) -> np.ndarray:
    """Which rows ``[ts, o, h, l, c, v]`` certainly pass `check_values`: a vectorised
    pre-check for stored series. It may flag a valid row (that row then goes through
    `check_values`), never pass an invalid one; a test holds it to that."""
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    ts, o, h, low, c, v = (rows[:, k] for k in range(6))
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(rows).all(axis=1)
        prices = (low > 0.0) & (low <= h) & (low <= o) & (o <= h) & (low <= c) & (c <= h)
        stamps = (ts >= 0) & (ts < MAX_TS_MS) & (np.fmod(ts, timeframe_ms) == 0)
        result: np.ndarray = finite & prices & (v >= 0.0) & stamps & (ts == np.floor(ts))
    return result


class CandleValidator:
    """Per-symbol sequence checks on top of `check_values`: order, duplicates, gaps.

    `accept` returns the candle or a Rejection; `last_gap` is the gap the latest accepted
    candle opened (None if it followed its predecessor). Counters of rejections by reason
    and the most recent gaps (bounded) are kept for stats.
    """

    def __init__(self, timeframe_ms: int, symbols: Sequence[str] | None = None) -> None:
        self.timeframe_ms = timeframe_ms
        self.symbols = frozenset(symbols) if symbols is not None else None
        self.last_ts: dict[str, int] = {}
        self.rejected: Counter[str] = Counter()
        self.accepted = 0
        self.gaps: deque[Gap] = deque(maxlen=1000)
        self.last_gap: Gap | None = None

    def accept(self, candle: Candle | Rejection) -> Candle | Rejection:
        self.last_gap = None
        result = candle if isinstance(candle, Rejection) else self._check(candle)
        if isinstance(result, Rejection):
            self.rejected[result.reason.value] += 1
        else:
            self._advance(result)
        return result

    def _check(self, candle: Candle) -> Candle | Rejection:
        if self.symbols is not None and candle.symbol not in self.symbols:
            return Rejection(Reason.UNKNOWN_SYMBOL, candle.symbol, candle.ts)
        reason = check_values(candle, self.timeframe_ms)
        if reason is None:
            reason = self._sequence_reason(candle)
        return candle if reason is None else Rejection(reason, candle.symbol, candle.ts)

    def _sequence_reason(self, candle: Candle) -> Reason | None:
        last = self.last_ts.get(candle.symbol)
        if last is None or candle.ts > last:
            return None
        return Reason.DUPLICATE if candle.ts == last else Reason.OUT_OF_ORDER

    def accept_run(self, symbol: str, last_ts: int, count: int) -> None:
        """Count ``count`` candles of ``symbol`` that passed `check_values` and follow the
        previous accepted one and each other without a gap, the last opening at ``last_ts``
        (what ``count`` calls of `accept` would record)."""
        self.last_ts[symbol] = last_ts
        self.accepted += count
        self.last_gap = None

    def _advance(self, candle: Candle) -> None:
        last = self.last_ts.get(candle.symbol)
        if last is not None and candle.ts - last > self.timeframe_ms:
            missing = (candle.ts - last) // self.timeframe_ms - 1
            self.last_gap = Gap(candle.symbol, last + self.timeframe_ms, missing)
            self.gaps.append(self.last_gap)
        self.last_ts[candle.symbol] = candle.ts
        self.accepted += 1
