"""Batch path: raw indicators and normalised features over a whole series.

Pure functions, numpy arrays in and out. Raw indicators come from TA-Lib where it has
them (milliseconds for 100k+ candles) and from :mod:`titan.features.kernels` otherwise;
:func:`normalise` then applies the definitions of :mod:`titan.features.spec` with the
same operations, in the same order, as :class:`titan.features.streaming.StreamingFeatures`.
"""

from __future__ import annotations

import math

import numpy as np
import talib

from titan.features import spec
from titan.features.kernels import (
    Array,
    apply_scalar,
    deviation,
    divide_or,
    lag,
    safe_log,
    window_sum,
)


def as_series(values: object) -> Array:
    """A 1-D contiguous float64 copy-or-view of ``values``."""
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D series, got shape {array.shape}")
    return array


def raw_indicators(
    open_: Array, high: Array, low: Array, close: Array, volume: Array
) -> dict[str, Array]:
    """Raw (unnormalised) indicators and the volume sums, keyed by name."""
    _check_candles(open_, high, low, close, volume)
    raw = _trend_raw(close) | _momentum_raw(high, low, close)
    raw |= _volatility_raw(high, low, close, raw["sma_20"])
    raw |= _volume_raw(high, low, close, volume)
    raw["adx"] = talib.ADX(high, low, close, spec.ADX_PERIOD)
    return raw


def normalise(
    raw: dict[str, Array], open_: Array, high: Array, low: Array, close: Array, volume: Array
) -> Array:
    """The (n, 40) feature table from raw indicators; NaN before each feature's warm-up."""
    c1 = lag(close, 1)
    columns = _price(raw, open_, high, low, close, volume, c1)
    columns += _trend(raw, close) + _momentum(raw) + _volatility(raw, close)
    columns += _flows(raw, close) + _ratios(raw, open_, high, low, close, volume, c1)
    columns.append(raw["adx"] / 100.0)
    table = np.column_stack(columns)
    for column, warmup in enumerate(spec.WARMUP_BY_COLUMN):
        table[:warmup, column] = np.nan
    return table


def compute_features(
    open_: object, high: object, low: object, close: object, volume: object
) -> Array:
    """The (n, 40) normalised feature table of a candle series (rows oldest first)."""
    series = [as_series(x) for x in (open_, high, low, close, volume)]
    with np.errstate(all="ignore"):
        return normalise(raw_indicators(*series), *series)


def _check_candles(open_: Array, high: Array, low: Array, close: Array, volume: Array) -> None:
    """Same rules as the streaming path: positive finite prices, low <= high, and a finite
    non-negative volume; ValueError naming the first bad candle otherwise."""
    series = (open_, high, low, close, volume)
    if len({x.size for x in series}) != 1:
        raise ValueError(f"series lengths differ: {[x.size for x in series]}")
    with np.errstate(invalid="ignore"):
        valid = (low > 0.0) & (low <= high) & (high < np.inf) & (open_ > 0.0) & (close > 0.0)
        valid &= (open_ < np.inf) & (close < np.inf) & (volume >= 0.0) & (volume < np.inf)
    if not valid.all():
        bad = int(np.argmin(valid))
        raise ValueError(f"invalid candle at index {bad}: {[float(x[bad]) for x in series]}")


def _trend_raw(close: Array) -> dict[str, Array]:
    fast, slow, signal = spec.EMA_FAST, spec.EMA_SLOW, spec.MACD_SIGNAL
    macd, macd_signal, macd_hist = talib.MACD(close, fast, slow, signal)
    raw = {f"sma_{n}": talib.SMA(close, n) for n in spec.SMA_PERIODS}
    raw |= {f"ema_{n}": talib.EMA(close, n) for n in (fast, slow, spec.KC_EMA)}
    return raw | {"macd": macd, "macd_signal": macd_signal, "macd_hist": macd_hist}


def _momentum_raw(high: Array, low: Array, close: Array) -> dict[str, Array]:
    slow_k, slow_d = talib.STOCH(  # both smoothings: TA-Lib's default, the SMA
        high,
        low,
        close,
        fastk_period=spec.STOCH_FASTK,
        slowk_period=spec.STOCH_SLOWK,
        slowd_period=spec.STOCH_SLOWD,
    )
    return {
        "rsi": talib.RSI(close, spec.RSI_PERIOD),
        "stoch_k": slow_k,
        "stoch_d": slow_d,
        "cci": talib.CCI(high, low, close, spec.CCI_PERIOD),
        "roc": talib.ROC(close, spec.ROC_PERIOD),
        "trix": talib.TRIX(close, spec.TRIX_PERIOD),
    }


def _volatility_raw(high: Array, low: Array, close: Array, sma20: Array) -> dict[str, Array]:
    width = spec.BB_WIDTH * deviation(close, spec.BB_PERIOD)
    ema20 = talib.EMA(close, spec.KC_EMA)
    kc_width = spec.KC_WIDTH * talib.ATR(high, low, close, spec.KC_ATR)
    return {
        "atr": talib.ATR(high, low, close, spec.ATR_PERIOD),
        "bb_upper": sma20 + width,
        "bb_lower": sma20 - width,
        "kc_upper": ema20 + kc_width,
        "kc_lower": ema20 - kc_width,
    }


def _volume_raw(high: Array, low: Array, close: Array, volume: Array) -> dict[str, Array]:
    typical = (high + low + close) / 3.0
    obv = talib.OBV(close, volume)
    ad = talib.AD(high, low, close, volume)
    return {
        "obv_change": obv - lag(obv, spec.FLOW_WINDOW),
        "ad_change": ad - lag(ad, spec.FLOW_WINDOW),
        "mfi": talib.MFI(high, low, close, volume, spec.MFI_PERIOD),
        "pv20": window_sum(typical * volume, spec.VWAP_WINDOW),
        "v20": window_sum(volume, spec.VOLUME_SHORT),
        "v50": window_sum(volume, spec.VOLUME_LONG),
    }


def _price(
    raw: dict[str, Array], o: Array, h: Array, low: Array, c: Array, v: Array, c1: Array
) -> list[Array]:
    spread = h - low
    location = np.where(spread > 0.0, (c - low) / spread - 0.5, 0.0)
    vsma50 = raw["v50"] / spec.VOLUME_LONG
    volume = apply_scalar(math.log1p, divide_or(v, vsma50, 0.0))
    typical = (h + low + c) / 3.0
    return [o / c1 - 1.0, h / c1 - 1.0, low / c1 - 1.0, location, volume, typical / c1 - 1.0]


def _trend(raw: dict[str, Array], c: Array) -> list[Array]:
    averages = ("sma_10", "sma_20", "sma_50", "ema_12", "ema_26")
    return [raw[name] / c - 1.0 for name in averages] + [
        raw[name] / c for name in ("macd", "macd_signal", "macd_hist")
    ]


def _momentum(raw: dict[str, Array]) -> list[Array]:
    return [
        raw["rsi"] / 100.0 - 0.5,
        raw["stoch_k"] / 100.0 - 0.5,
        raw["stoch_d"] / 100.0 - 0.5,
        raw["cci"] / 100.0,
        raw["roc"] / 100.0,
        raw["trix"] / 100.0,
    ]


def _volatility(raw: dict[str, Array], c: Array) -> list[Array]:
    upper, lower, middle = raw["bb_upper"], raw["bb_lower"], raw["sma_20"]
    band = upper - lower
    flat = np.abs(band) <= spec.FLAT_EPSILON * (np.abs(upper) + np.abs(lower))
    pctb = np.where(flat, 0.0, (c - lower) / band - 0.5)
    kc_mid = raw[f"ema_{spec.KC_EMA}"]
    return [
        raw["atr"] / c, upper / c - 1.0, middle / c - 1.0, lower / c - 1.0, band / middle, pctb,
        raw["kc_upper"] / c - 1.0, kc_mid / c - 1.0, raw["kc_lower"] / c - 1.0,
    ]  # fmt: skip


def _flows(raw: dict[str, Array], c: Array) -> list[Array]:
    v20 = raw["v20"]
    vwap = np.where(v20 > 0.0, divide_or(raw["pv20"], v20, 0.0) / c - 1.0, 0.0)
    obv = divide_or(raw["obv_change"], v20, 0.0)
    ad = divide_or(raw["ad_change"], v20, 0.0)
    return [obv, ad, raw["mfi"] / 100.0 - 0.5, vwap]


def _ratios(
    raw: dict[str, Array], o: Array, h: Array, low: Array, c: Array, v: Array, c1: Array
) -> list[Array]:
    vsma20 = raw["v20"] / spec.VOLUME_SHORT
    vsma50 = raw["v50"] / spec.VOLUME_LONG
    return [
        c / c1 - 1.0,
        apply_scalar(safe_log, c / c1),
        h / low - 1.0,
        o / c - 1.0,
        divide_or(vsma20, vsma50, 1.0) - 1.0,
        divide_or(v, vsma20, 1.0) - 1.0,
    ]
