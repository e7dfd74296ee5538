"""Streaming oscillators: RSI, STOCH, CCI, MFI, ADX, MACD and TRIX.

Like :mod:`titan.features.incremental`, each kernel replicates TA-Lib 0.8's arithmetic
and its zero tests (exact where TA-Lib's are exact, scale-aware ``|d| <= 1e-14 * scale``
where TA-Lib's are), so its values equal ``talib.<FUNC>`` on the whole series. Outputs
that TA-Lib reports only later (STOCH %K, the MACD line) are NaN until TA-Lib's first
output; the callers mask by the documented warm-ups anyway.
"""

from __future__ import annotations

import math
from collections import deque

from titan.features.incremental import Ema, Roc, Sma
from titan.features.numeric import is_flat
from titan.features.state import Component

NAN = math.nan


class Rsi(Component):
    """``talib.RSI``: Wilder averages of gains and losses, 0 while nothing has moved."""

    __slots__ = ("_gain", "_inv", "_loss", "_n", "_prev", "_seen")

    def __init__(self, n: int) -> None:
        self._n = n
        self._inv = 1.0 / n
        self._prev = 0.0
        self._seen = 0
        self._gain = 0.0
        self._loss = 0.0

    def update(self, x: float) -> float:
        self._seen += 1
        diff = x - self._prev
        self._prev = x
        if self._seen == 1:
            return NAN
        gain = diff if diff > 0.0 else 0.0
        loss = -diff if diff < 0.0 else 0.0
        if self._seen <= self._n + 1:
            return self._seed(gain, loss)
        n1 = self._n - 1
        self._gain = (self._gain * n1 + gain) * self._inv
        self._loss = (self._loss * n1 + loss) * self._inv
        return self._value()

    def _seed(self, gain: float, loss: float) -> float:
        self._gain += gain
        self._loss += loss
        if self._seen <= self._n:
            return NAN
        self._gain *= self._inv
        self._loss *= self._inv
        return self._value()

    def _value(self) -> float:
        total = self._gain + self._loss
        return 100.0 * (self._gain / total) if total > 0.0 else 0.0


class Stoch(Component):
    """``talib.STOCH`` with SMA smoothing: returns (slow %K, slow %D)."""

    __slots__ = ("_highs", "_lows", "_slow_d", "_slow_k")

    def __init__(self, fastk: int, slowk: int, slowd: int) -> None:
        self._highs: deque[float] = deque(maxlen=fastk)
        self._lows: deque[float] = deque(maxlen=fastk)
        self._slow_k = Sma(slowk)
        self._slow_d = Sma(slowd)

    def update(self, high: float, low: float, close: float) -> tuple[float, float]:
        self._highs.append(high)
        self._lows.append(low)
        if len(self._highs) < (self._highs.maxlen or 0):
            return NAN, NAN
        highest = max(self._highs)
        lowest = min(self._lows)
        spread = highest - lowest
        if is_flat(spread, abs(highest) + abs(lowest)):
            fast_k = 0.0
        else:
            fast_k = (close - lowest) / spread * 100.0
        slow_k = self._slow_k.update(fast_k)
        if slow_k != slow_k:
            return NAN, NAN
        slow_d = self._slow_d.update(slow_k)
        return (slow_k, slow_d) if slow_d == slow_d else (NAN, NAN)


class Cci(Component):
    """``talib.CCI``: typical prices in TA-Lib's circular-buffer order."""

    __slots__ = ("_n", "_seen", "_slots")

    def __init__(self, n: int) -> None:
        self._n = n
        self._slots = [0.0] * n
        self._seen = 0

    def update(self, high: float, low: float, close: float) -> float:
        last = (high + low + close) / 3
        slots = self._slots
        slots[self._seen % self._n] = last
        self._seen += 1
        if self._seen < self._n:
            return NAN
        average = sum(slots) / self._n
        deviation = sum([abs(x - average) for x in slots]) / self._n
        diff = last - average
        scale = abs(average)
        if is_flat(diff, scale) or is_flat(deviation, scale):
            return 0.0
        return diff / (0.015 * deviation)


class Mfi(Component):
    """``talib.MFI``: money flow over ``n`` bars, sums reset after ``n`` empty bars."""

    __slots__ = ("_n", "_neg", "_neg_sum", "_null_run", "_pos", "_pos_sum", "_prev", "_seen")

    def __init__(self, n: int) -> None:
        self._n = n
        self._pos = [0.0] * n
        self._neg = [0.0] * n
        self._pos_sum = 0.0
        self._neg_sum = 0.0
        self._null_run = 0
        self._prev = 0.0
        self._seen = 0

    def update(self, high: float, low: float, close: float, volume: float) -> float:
        typical = (high + low + close) / 3.0
        self._seen += 1
        if self._seen == 1:
            self._prev = typical
            return NAN
        slot = (self._seen - 2) % self._n
        if self._seen > self._n + 1:
            self._pos_sum -= self._pos[slot]
            self._neg_sum -= self._neg[slot]
        self._add_flow(slot, typical, volume)
        return NAN if self._seen <= self._n else self._value()

    def _add_flow(self, slot: int, typical: float, volume: float) -> None:
        diff = typical - self._prev
        scale = abs(typical) + abs(self._prev)
        self._prev = typical
        flow = 0.0 if is_flat(diff, scale) else typical * volume
        positive, negative = (0.0, flow) if diff < 0.0 else (flow, 0.0)
        self._pos[slot] = positive
        self._neg[slot] = negative
        self._pos_sum += positive
        self._neg_sum += negative
        self._null_run = self._null_run + 1 if flow == 0.0 else 0
        if self._null_run >= self._n:
            self._null_run = self._n
            self._pos_sum = 0.0
            self._neg_sum = 0.0

    def _value(self) -> float:
        total = self._pos_sum + self._neg_sum
        if total <= 0.0:
            return 0.0
        positive = min(max(self._pos_sum, 0.0), total)
        return 100.0 * (positive / total)


class Adx(Component):
    """``talib.ADX``: Wilder-smoothed directional movement over ``n`` bars."""

    __slots__ = ("_adx", "_high", "_low", "_minus_dm", "_n", "_plus_dm", "_seen", "_tr")

    def __init__(self, n: int) -> None:
        self._n = n
        self._seen = 0
        self._high = self._low = 0.0
        self._minus_dm = self._plus_dm = self._tr = self._adx = 0.0

    def update(self, high: float, low: float, true_range: float) -> float:
        """Advance by one bar; ``true_range`` uses the previous close (ignored at bar 0)."""
        self._seen += 1
        diff_p, diff_m = high - self._high, self._low - low
        self._high, self._low = high, low
        if self._seen == 1:
            return NAN
        n = self._n
        if self._seen > n:
            self._minus_dm -= self._minus_dm / n
            self._plus_dm -= self._plus_dm / n
            self._tr = self._tr - self._tr / n + true_range
        else:
            self._tr += true_range
        if diff_m > 0 and diff_p < diff_m:
            self._minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            self._plus_dm += diff_p
        return NAN if self._seen <= n else self._smooth(self._dx())

    def _dx(self) -> float:
        if not self._tr > 0.0:
            return NAN
        minus_di = 100.0 * (self._minus_dm / self._tr)
        plus_di = 100.0 * (self._plus_dm / self._tr)
        total = minus_di + plus_di
        return 100.0 * (abs(minus_di - plus_di) / total) if total > 0.0 else NAN

    def _smooth(self, dx: float) -> float:
        n = self._n
        if self._seen < 2 * n:
            self._adx += dx if dx == dx else 0.0
            return NAN
        if self._seen == 2 * n:
            self._adx = (self._adx + (dx if dx == dx else 0.0)) / n
        elif dx == dx:
            self._adx = (self._adx * (n - 1) + dx) / n
        return self._adx


class Macd(Component):
    """``talib.MACD``: the fast EMA is seeded at the slow EMA's first bar."""

    __slots__ = ("_fast", "_signal")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self._fast = Ema(fast, skip=slow - fast)
        self._signal = Ema(signal)

    def update(self, close: float, slow_ema: float) -> tuple[float, float, float]:
        """Advance with the close and the slow EMA of the same bar (line, signal, hist)."""
        line = self._fast.update(close) - slow_ema
        if line != line:
            return NAN, NAN, NAN
        signal = self._signal.update(line)
        if signal != signal:
            return NAN, NAN, NAN
        return line, signal, line - signal


class Trix(Component):
    """``talib.TRIX``: 1-bar percent change of a triple EMA."""

    __slots__ = ("_ema1", "_ema2", "_ema3", "_roc")

    def __init__(self, n: int) -> None:
        self._ema1, self._ema2, self._ema3 = Ema(n), Ema(n), Ema(n)
        self._roc = Roc(1)

    def update(self, x: float) -> float:
        value = self._ema1.update(x)
        if value == value:
            value = self._ema2.update(value)
        if value == value:
            value = self._ema3.update(value)
        return self._roc.update(value) if value == value else NAN
