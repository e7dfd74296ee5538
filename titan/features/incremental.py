"""Streaming moving averages, windows and running totals, O(1) per update.

The kernels named after a TA-Lib function replicate the arithmetic of TA-Lib 0.8
operation by operation (same seeds, same order of additions, same fused multiply-adds),
so their values equal ``talib.<FUNC>`` on the whole series bit for bit. ``WindowSum``,
``Change`` and ``Deviation`` mirror the batch kernels of :mod:`titan.features.kernels`
(windows summed oldest first; CPython 3.11's ``sum`` of floats adds left to right).
Each ``update`` returns NaN until the kernel has seen enough inputs.
"""

from __future__ import annotations

import math
from collections import deque

from titan.features.numeric import fma_ratio
from titan.features.state import Component

NAN = math.nan


def true_range(high: float, low: float, prev_close: float) -> float:
    """TA-Lib's true range: max(h - l, |c1 - h|, |c1 - l|), compared in that order."""
    greatest = high - low
    value = abs(prev_close - high)
    if value > greatest:
        greatest = value
    value = abs(prev_close - low)
    if value > greatest:
        greatest = value
    return greatest


class Sma(Component):
    """``talib.SMA``: a running total, add the newest then subtract the oldest."""

    __slots__ = ("_count", "_n", "_ring", "_total")

    def __init__(self, n: int) -> None:
        self._n = n
        self._ring: deque[float] = deque(maxlen=n)
        self._total = 0.0
        self._count = 0

    def update(self, x: float) -> float:
        self._count += 1
        self._total += x
        self._ring.append(x)
        if self._count < self._n:
            return NAN
        value = self._total / self._n
        self._total -= self._ring[0]
        return value


class Ema(Component):
    """``talib.EMA``: seeded with the SMA of the first ``n`` inputs after ``skip``."""

    __slots__ = ("_k_den", "_k_num", "_n", "_seen", "_skip", "_value")

    def __init__(self, n: int, skip: int = 0) -> None:
        self._n = n
        self._k_num, self._k_den = (2.0 / (n + 1)).as_integer_ratio()
        self._skip = skip
        self._seen = 0
        self._value = 0.0

    def update(self, x: float) -> float:
        self._seen += 1
        filled = self._seen - self._skip
        if filled > self._n:
            value = fma_ratio(self._k_num, self._k_den, x - self._value, self._value)
            self._value = value
            return value
        if filled <= 0:
            return NAN
        self._value += x
        if filled < self._n:
            return NAN
        self._value /= self._n
        return self._value


class Wilder(Component):
    """TA-Lib's Wilder smoothing (``talib.ATR`` over true ranges, ``talib.RMA``)."""

    __slots__ = ("_alpha", "_beta_den", "_beta_num", "_n", "_seen", "_value")

    def __init__(self, n: int) -> None:
        beta = (n - 1) / n
        self._n = n
        self._beta_num, self._beta_den = beta.as_integer_ratio()
        self._alpha = 1.0 - beta
        self._seen = 0
        self._value = 0.0

    def update(self, x: float) -> float:
        self._seen += 1
        if self._seen > self._n:
            self._value = fma_ratio(self._beta_num, self._beta_den, self._value, self._alpha * x)
            return self._value
        self._value += x
        if self._seen < self._n:
            return NAN
        self._value /= self._n
        return self._value


class WindowSum(Component):
    """Sum of the last ``n`` inputs, added oldest first (no running total: exact zeros)."""

    __slots__ = ("_ring",)

    def __init__(self, n: int) -> None:
        self._ring: deque[float] = deque(maxlen=n)

    def update(self, x: float) -> float:
        ring = self._ring
        ring.append(x)
        if len(ring) < (ring.maxlen or 0):
            return NAN
        return sum(ring)


class Change(Component):
    """``x[t] - x[t - n]`` (NaN for the first ``n`` inputs)."""

    __slots__ = ("_ring",)

    def __init__(self, n: int) -> None:
        self._ring: deque[float] = deque(maxlen=n + 1)

    def update(self, x: float) -> float:
        ring = self._ring
        ring.append(x)
        if len(ring) < (ring.maxlen or 0):
            return NAN
        return x - ring[0]


class Obv(Component):
    """``talib.OBV``: starts at the first volume, then adds or subtracts each volume."""

    __slots__ = ("_prev", "_started", "_value")

    def __init__(self) -> None:
        self._value = 0.0
        self._prev = 0.0
        self._started = False

    def update(self, close: float, volume: float) -> float:
        if not self._started:
            self._started = True
            self._value = volume
        elif close > self._prev:
            self._value += volume
        elif close < self._prev:
            self._value -= volume
        self._prev = close
        return self._value


class Ad(Component):
    """``talib.AD``: the Chaikin accumulation/distribution line."""

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0.0

    def update(self, high: float, low: float, close: float, volume: float) -> float:
        spread = high - low
        if spread > 0.0:
            self._value += (((close - low) - (high - close)) / spread) * volume
        return self._value


class Roc(Component):
    """``talib.ROC``: percent change over ``n`` inputs, 0 after a zero input."""

    __slots__ = ("_ring",)

    def __init__(self, n: int) -> None:
        self._ring: deque[float] = deque(maxlen=n + 1)

    def update(self, x: float) -> float:
        ring = self._ring
        ring.append(x)
        if len(ring) < (ring.maxlen or 0):
            return NAN
        base = ring[0]
        return ((x / base) - 1.0) * 100.0 if base != 0.0 else 0.0


class Deviation(Component):
    """Population standard deviation of the last ``n`` closes, from differences to the
    newest close (``var = mean(d**2) - mean(d)**2``): exact 0 over a flat window."""

    __slots__ = ("_n", "_ring")

    def __init__(self, n: int) -> None:
        self._n = n
        self._ring: deque[float] = deque(maxlen=n)

    def update(self, x: float) -> float:
        ring = self._ring
        ring.append(x)
        if len(ring) < self._n:
            return NAN
        diffs = [y - x for y in ring]
        mean = sum(diffs) / self._n
        var = sum([d * d for d in diffs]) / self._n - mean * mean
        return math.sqrt(var) if var > 0.0 else 0.0
