"""Incremental features for one symbol: one candle in, one row of 40 features out.

:class:`StreamingFeatures` holds the state of every indicator (a few small rings and
scalars, constant memory) and computes each row in pure Python float arithmetic, which
for scalars is several times faster than numpy calls. Its rows equal the batch rows of
:func:`titan.features.batch.compute_features` (see :mod:`titan.features.spec`).
"""

from __future__ import annotations

import math

from titan.features import spec
from titan.features.incremental import (
    Ad,
    Change,
    Deviation,
    Ema,
    Obv,
    Roc,
    Sma,
    Wilder,
    WindowSum,
    true_range,
)
from titan.features.numeric import is_flat
from titan.features.oscillators import Adx, Cci, Macd, Mfi, Rsi, Stoch, Trix
from titan.features.state import Component

NAN = math.nan
_WARMUPS = spec.WARMUP_BY_COLUMN


class StreamingFeatures(Component):
    """Per-symbol incremental state: ``update(o, h, l, c, v)`` -> 40 normalised features."""

    __slots__ = (
        "_ad",
        "_ad_change",
        "_adx",
        "_atr10",
        "_atr14",
        "_cci",
        "_count",
        "_dev20",
        "_ema12",
        "_ema20",
        "_ema26",
        "_macd",
        "_mfi",
        "_obv",
        "_obv_change",
        "_prev_close",
        "_pv20",
        "_roc",
        "_rsi",
        "_sma10",
        "_sma20",
        "_sma50",
        "_stoch",
        "_tr",
        "_trix",
        "_v20",
        "_v50",
    )

    def __init__(self) -> None:
        self._count = 0
        self._prev_close = NAN
        self._tr = NAN
        self._v20, self._v50 = WindowSum(spec.VOLUME_SHORT), WindowSum(spec.VOLUME_LONG)
        self._pv20 = WindowSum(spec.VWAP_WINDOW)
        self._sma10, self._sma20, self._sma50 = (Sma(n) for n in spec.SMA_PERIODS)
        self._ema12, self._ema26 = Ema(spec.EMA_FAST), Ema(spec.EMA_SLOW)
        self._ema20 = Ema(spec.KC_EMA)
        self._macd = Macd(spec.EMA_FAST, spec.EMA_SLOW, spec.MACD_SIGNAL)
        self._rsi = Rsi(spec.RSI_PERIOD)
        self._stoch = Stoch(spec.STOCH_FASTK, spec.STOCH_SLOWK, spec.STOCH_SLOWD)
        self._cci, self._roc = Cci(spec.CCI_PERIOD), Roc(spec.ROC_PERIOD)
        self._trix = Trix(spec.TRIX_PERIOD)
        self._atr14, self._atr10 = Wilder(spec.ATR_PERIOD), Wilder(spec.KC_ATR)
        self._dev20 = Deviation(spec.BB_PERIOD)
        self._obv, self._obv_change = Obv(), Change(spec.FLOW_WINDOW)
        self._ad, self._ad_change = Ad(), Change(spec.FLOW_WINDOW)
        self._mfi, self._adx = Mfi(spec.MFI_PERIOD), Adx(spec.ADX_PERIOD)

    @property
    def count(self) -> int:
        """Candles seen so far."""
        return self._count

    @property
    def is_warm(self) -> bool:
        """True once every feature of the latest row is defined."""
        return self._count > spec.WARMUP

    def update(
        self, open_: float, high: float, low: float, close: float, volume: float
    ) -> list[float]:
        """Advance by one closed candle; the row of 40 features (NaN before warm-up).

        Prices must be positive and finite with ``low <= high``, the volume finite and
        non-negative; anything else raises ValueError before any state changes."""
        if not (0.0 < low <= high < math.inf and 0.0 < open_ < math.inf):
            raise ValueError(f"invalid candle prices o={open_} h={high} l={low} c={close}")
        if not (0.0 < close < math.inf and 0.0 <= volume < math.inf):
            raise ValueError(f"invalid candle close={close} or volume={volume}")
        prev_close = self._prev_close
        self._prev_close = close
        self._count += 1
        self._tr = true_range(high, low, prev_close) if self._count > 1 else NAN
        v20, v50 = self._v20.update(volume), self._v50.update(volume)
        row = self._price(open_, high, low, close, volume, prev_close, v50)
        sma20 = self._sma20.update(close)
        row += self._trend(close, sma20)
        row += self._momentum(high, low, close)
        row += self._volatility(close, sma20)
        row += self._flows(high, low, close, volume, v20)
        row += self._ratios(open_, high, low, close, volume, prev_close, v20, v50)
        row.append(self._adx.update(high, low, self._tr) / 100.0)
        if self._count <= spec.WARMUP:
            _mask_warmup(row, self._count - 1)
        return row

    def _price(
        self, o: float, h: float, low: float, c: float, v: float, c1: float, v50: float
    ) -> list[float]:
        spread = h - low
        location = (c - low) / spread - 0.5 if spread > 0.0 else 0.0
        vsma50 = v50 / spec.VOLUME_LONG
        volume = math.log1p(v / vsma50) if vsma50 > 0.0 else 0.0
        typical = (h + low + c) / 3.0
        return [o / c1 - 1.0, h / c1 - 1.0, low / c1 - 1.0, location, volume, typical / c1 - 1.0]

    def _trend(self, c: float, sma20: float) -> list[float]:
        ema26 = self._ema26.update(c)
        line, signal, hist = self._macd.update(c, ema26)
        return [
            self._sma10.update(c) / c - 1.0, sma20 / c - 1.0, self._sma50.update(c) / c - 1.0,
            self._ema12.update(c) / c - 1.0, ema26 / c - 1.0,
            line / c, signal / c, hist / c,
        ]  # fmt: skip

    def _momentum(self, h: float, low: float, c: float) -> list[float]:
        slow_k, slow_d = self._stoch.update(h, low, c)
        return [
            self._rsi.update(c) / 100.0 - 0.5,
            slow_k / 100.0 - 0.5,
            slow_d / 100.0 - 0.5,
            self._cci.update(h, low, c) / 100.0,
            self._roc.update(c) / 100.0,
            self._trix.update(c) / 100.0,
        ]

    def _volatility(self, c: float, middle: float) -> list[float]:
        tr = self._tr
        atr14 = self._atr14.update(tr) if tr == tr else NAN
        atr10 = self._atr10.update(tr) if tr == tr else NAN
        width = spec.BB_WIDTH * self._dev20.update(c)
        upper, lower = middle + width, middle - width
        band = upper - lower
        pctb = 0.0 if is_flat(band, abs(upper) + abs(lower)) else (c - lower) / band - 0.5
        kc_mid = self._ema20.update(c)
        kc_width = spec.KC_WIDTH * atr10
        return [
            atr14 / c, upper / c - 1.0, middle / c - 1.0, lower / c - 1.0, band / middle, pctb,
            (kc_mid + kc_width) / c - 1.0, kc_mid / c - 1.0, (kc_mid - kc_width) / c - 1.0,
        ]  # fmt: skip

    def _flows(self, h: float, low: float, c: float, v: float, v20: float) -> list[float]:
        obv = self._obv_change.update(self._obv.update(c, v))
        ad = self._ad_change.update(self._ad.update(h, low, c, v))
        pv20 = self._pv20.update((h + low + c) / 3.0 * v)
        mfi = self._mfi.update(h, low, c, v) / 100.0 - 0.5
        if v20 > 0.0:
            return [obv / v20, ad / v20, mfi, pv20 / v20 / c - 1.0]
        return [0.0, 0.0, mfi, 0.0]

    def _ratios(
        self, o: float, h: float, low: float, c: float, v: float, c1: float, v20: float, v50: float
    ) -> list[float]:
        vsma20 = v20 / spec.VOLUME_SHORT
        vsma50 = v50 / spec.VOLUME_LONG
        return [
            c / c1 - 1.0,
            math.log(c / c1),
            h / low - 1.0,
            o / c - 1.0,
            vsma20 / vsma50 - 1.0 if vsma50 > 0.0 else 0.0,
            v / vsma20 - 1.0 if vsma20 > 0.0 else 0.0,
        ]


def _mask_warmup(row: list[float], index: int) -> None:
    """Set the features not yet defined at candle ``index`` to NaN."""
    for column, warmup in enumerate(_WARMUPS):
        if index < warmup:
            row[column] = NAN
