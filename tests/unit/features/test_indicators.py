"""Each streaming kernel against its TA-Lib function on whole series."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import talib

from tests.unit.features.helpers import Array, Candles, random_walk
from titan.features.incremental import Ad, Ema, Obv, Roc, Sma, Wilder, true_range
from titan.features.oscillators import Adx, Cci, Macd, Mfi, Rsi, Stoch, Trix

SERIES = {
    "btc-like ticks": random_walk(3000, seed=11, level=1e5, tick=0.1),
    "ada-like ticks": random_walk(3000, seed=12, level=0.7, tick=1e-4),
    "micro price": random_walk(3000, seed=13, level=1e-9),
}


def _stream(step: Callable[[int], float], n: int) -> Array:
    return np.array([step(i) for i in range(n)], dtype=np.float64)


def _true_ranges(h: Array, low: Array, c: Array) -> list[float]:
    return [np.nan] + [true_range(h[i], low[i], c[i - 1]) for i in range(1, h.size)]


def _assert_same(stream: Array, expected: Array) -> None:
    np.testing.assert_array_equal(np.isnan(stream), np.isnan(expected))
    scale = float(np.nanmax(np.abs(expected))) or 1.0
    np.testing.assert_allclose(stream, expected, rtol=1e-9, atol=1e-9 * scale)


def _close_kernels(c: Array) -> dict[str, tuple[Callable[[int], float], Array]]:
    sma, ema, roc, trix, rsi = Sma(20), Ema(12), Roc(10), Trix(15), Rsi(14)
    return {
        "SMA": (lambda i: sma.update(c[i]), talib.SMA(c, 20)),
        "EMA": (lambda i: ema.update(c[i]), talib.EMA(c, 12)),
        "ROC": (lambda i: roc.update(c[i]), talib.ROC(c, 10)),
        "TRIX": (lambda i: trix.update(c[i]), talib.TRIX(c, 15)),
        "RSI": (lambda i: rsi.update(c[i]), talib.RSI(c, 14)),
    }


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("name", ["SMA", "EMA", "ROC", "TRIX", "RSI"])
def test_close_based_kernel_matches_talib(series: str, name: str) -> None:
    close = SERIES[series][3]
    step, expected = _close_kernels(close)[name]
    _assert_same(_stream(step, close.size), expected)


def _bar_kernels(candles: Candles) -> dict[str, tuple[Callable[[int], float], Array]]:
    _, h, low, c, v = candles
    trs = _true_ranges(h, low, c)
    atr, cci, mfi, adx, obv, ad = Wilder(14), Cci(20), Mfi(14), Adx(14), Obv(), Ad()
    return {
        "ATR": (lambda i: atr.update(trs[i]) if i else np.nan, talib.ATR(h, low, c, 14)),
        "CCI": (lambda i: cci.update(h[i], low[i], c[i]), talib.CCI(h, low, c, 20)),
        "MFI": (lambda i: mfi.update(h[i], low[i], c[i], v[i]), talib.MFI(h, low, c, v, 14)),
        "ADX": (lambda i: adx.update(h[i], low[i], trs[i]), talib.ADX(h, low, c, 14)),
        "OBV": (lambda i: obv.update(c[i], v[i]), talib.OBV(c, v)),
        "AD": (lambda i: ad.update(h[i], low[i], c[i], v[i]), talib.AD(h, low, c, v)),
    }


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("name", ["ATR", "CCI", "MFI", "ADX", "OBV", "AD"])
def test_bar_based_kernel_matches_talib(series: str, name: str) -> None:
    candles = SERIES[series]
    step, expected = _bar_kernels(candles)[name]
    _assert_same(_stream(step, candles[3].size), expected)


@pytest.mark.parametrize("series", SERIES)
def test_stoch_matches_talib_slow_k_and_d(series: str) -> None:
    _, h, low, c, _ = SERIES[series]
    stoch = Stoch(14, 3, 3)
    rows = np.array([stoch.update(h[i], low[i], c[i]) for i in range(c.size)])
    slow_k, slow_d = talib.STOCH(h, low, c, fastk_period=14, slowk_period=3, slowd_period=3)
    _assert_same(rows[:, 0], slow_k)
    _assert_same(rows[:, 1], slow_d)


@pytest.mark.parametrize("series", SERIES)
def test_macd_matches_talib_line_signal_and_histogram(series: str) -> None:
    close = SERIES[series][3]
    slow, macd = Ema(26), Macd(12, 26, 9)
    rows = np.array([macd.update(x, slow.update(x)) for x in close])
    for column, expected in enumerate(talib.MACD(close, 12, 26, 9)):
        _assert_same(rows[:, column], expected)
