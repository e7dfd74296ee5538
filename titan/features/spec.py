"""The feature set: 40 scale-free features per candle, their parameters and warm-ups.

Six price features (OHLCV plus the typical price) and 34 indicators. Raw indicators are
TA-Lib 0.8 with the parameters below (own kernels for the Bollinger deviation, VWAP and
volume sums); every feature is then normalised so that it carries no price or volume
unit: BTC at 100k and ADA at 0.7 give comparable numbers, and scaling all prices (or all
volumes) of a series by a constant leaves the features unchanged (bit for bit for powers
of two, to rounding otherwise). Every definition is
causal: row t uses candles 0..t only. Notation: ``o h l c v`` are the candle's open,
high, low, close and volume, ``c1`` the previous close, ``tp = (h + l + c) / 3``,
``V20`` / ``V50`` the sums of the last 20 / 50 volumes, ``vsma20 = V20 / 20`` and
``vsma50 = V50 / 50``. "Warm-up" is the 0-based index of the first candle at which the
feature is defined; earlier rows are NaN in the batch and the streaming path alike.

=============  ====================================================  =======
feature        definition (normalised)                               warm-up
=============  ====================================================  =======
open           o / c1 - 1                                            1
high           h / c1 - 1                                            1
low            l / c1 - 1                                            1
close          close location (c - l) / (h - l) - 0.5; 0 if h == l   0
volume         log1p(v / vsma50); 0 if V50 == 0                      49
hlc3           tp / c1 - 1 (typical price, the sixth price feature)  1
sma_10         SMA(c, 10) / c - 1                                    9
sma_20         SMA(c, 20) / c - 1                                    19
sma_50         SMA(c, 50) / c - 1                                    49
ema_12         EMA(c, 12) / c - 1                                    11
ema_26         EMA(c, 26) / c - 1                                    25
macd           MACD(12, 26, 9) line / c                              33
macd_signal    MACD signal line / c                                  33
macd_hist      MACD histogram / c                                    33
rsi_14         RSI(14) / 100 - 0.5                                   14
stoch_k        slow %K of STOCH(14, 3 SMA, 3 SMA) / 100 - 0.5        17
stoch_d        slow %D / 100 - 0.5                                   17
cci_20         CCI(20) / 100                                         19
roc_10         ROC(c, 10) / 100 = c / c[t-10] - 1                    10
trix_15        TRIX(c, 15) / 100 (1-bar change of the triple EMA)    43
atr_14         ATR(14) / c                                           14
bb_upper       (SMA20 + 2 * sd20) / c - 1                            19
bb_middle      SMA20 / c - 1 (same value as sma_20)                  19
bb_lower       (SMA20 - 2 * sd20) / c - 1                            19
bb_width       (upper - lower) / middle                              19
bb_pctb        %B - 0.5 = (c - lower) / (upper - lower) - 0.5;       19
               0 if the band is flat (see below)
kc_upper       Keltner (EMA20 + 2 * ATR10) / c - 1                   19
kc_middle      EMA20 / c - 1                                         19
kc_lower       (EMA20 - 2 * ATR10) / c - 1                           19
obv            (OBV[t] - OBV[t-20]) / V20, in [-1, 1]; 0 if V20 == 0 20
ad             (AD[t] - AD[t-20]) / V20, in [-1, 1]; 0 if V20 == 0   20
mfi_14         MFI(14) / 100 - 0.5                                   14
vwap_20        VWAP20 / c - 1; 0 if V20 == 0                         19
return         c / c1 - 1                                            1
log_return     log(c / c1)                                           1
hl_ratio       h / l - 1                                             0
oc_ratio       o / c - 1                                             0
volume_sma     vsma20 / vsma50 - 1; 0 if V50 == 0                    49
volume_ratio   v / vsma20 - 1; 0 if V20 == 0                         19
adx_14         ADX(14) / 100                                         27
=============  ====================================================  =======

Parameters and conventions:

- SMA, EMA, MACD, RSI, STOCH, CCI, ROC, TRIX, ATR, OBV, AD (Chaikin A/D line), MFI and
  ADX are TA-Lib's, with its conventions: EMAs are seeded with the SMA of their first
  ``n`` inputs; TA-Lib's MACD seeds its fast EMA at the slow EMA's first bar (so the
  MACD fast line is not ``EMA(c, 12)``); RSI is 0 while no close has moved yet, MFI 0
  while the window carries no money flow, %K 0 while the 14-bar range is flat, CCI 0
  over a flat window, and ADX holds its value while the true range is zero.
- Bollinger bands (20, 2): SMA20 +- 2 population standard deviations of the last 20
  closes. The deviation is computed from differences to the current close
  (``d = x - c``: ``var = mean(d**2) - mean(d)**2``), not from running sums of squared
  prices, so it is exact (0) over a flat window and free of cancellation at any price
  level. The band counts as flat when ``upper - lower <= 1e-14 * (|upper| + |lower|)``
  (TA-Lib's scale-aware zero test).
- Keltner channel: EMA(c, 20) +- 2 * ATR(10).
- VWAP: crypto trades round the clock, so there is no session to anchor a VWAP; it is
  rolling over the last 20 candles, ``sum(tp * v) / sum(v)``.
- OBV and A/D are running totals whose level depends on where the series starts;
  their change over 20 candles divided by the volume traded in those candles is
  scale-free and bounded.
- Ratios whose denominator is a volume sum are 0 when that sum is 0 (a window without
  trades); prices are assumed positive and finite (validated at the boundary).

Streaming equals batch: for every feature and every row at or after its warm-up,
``|s - b| <= TOLERANCE * max(|b|, FLOOR)``; the floor (in the normalised units above)
only matters for features that cross zero. In practice the two paths agree bit for bit,
because the streaming kernels replicate the arithmetic of TA-Lib 0.8 (C library 0.8.1,
as bundled with the ``ta-lib`` 0.8.2 wheel) operation by operation, including its fused
multiply-adds and its zero tests; another TA-Lib version may differ in the last bits
(still within the tolerance) or in its zero conventions (the oracle tests would say so).
"""

from __future__ import annotations

from typing import Final

SMA_PERIODS: Final = (10, 20, 50)
EMA_FAST: Final = 12
EMA_SLOW: Final = 26
MACD_SIGNAL: Final = 9
RSI_PERIOD: Final = 14
STOCH_FASTK: Final = 14
STOCH_SLOWK: Final = 3
STOCH_SLOWD: Final = 3
CCI_PERIOD: Final = 20
ROC_PERIOD: Final = 10
TRIX_PERIOD: Final = 15
ATR_PERIOD: Final = 14
BB_PERIOD: Final = 20
BB_WIDTH: Final = 2.0
KC_EMA: Final = 20
KC_ATR: Final = 10
KC_WIDTH: Final = 2.0
FLOW_WINDOW: Final = 20
MFI_PERIOD: Final = 14
VWAP_WINDOW: Final = 20
VOLUME_SHORT: Final = 20
VOLUME_LONG: Final = 50
ADX_PERIOD: Final = 14

FLAT_EPSILON: Final = 1e-14
"""Relative size below which a difference of two prices counts as zero (TA-Lib's)."""

TOLERANCE: Final = 1e-9
"""Streaming vs batch: relative tolerance."""
FLOOR: Final = 1e-6
"""Streaming vs batch: absolute floor of the relative tolerance's scale."""

_WARMUPS: Final = (
    ("open", 1),
    ("high", 1),
    ("low", 1),
    ("close", 0),
    ("volume", VOLUME_LONG - 1),
    ("hlc3", 1),
    ("sma_10", 9),
    ("sma_20", 19),
    ("sma_50", 49),
    ("ema_12", EMA_FAST - 1),
    ("ema_26", EMA_SLOW - 1),
    ("macd", EMA_SLOW + MACD_SIGNAL - 2),
    ("macd_signal", EMA_SLOW + MACD_SIGNAL - 2),
    ("macd_hist", EMA_SLOW + MACD_SIGNAL - 2),
    ("rsi_14", RSI_PERIOD),
    ("stoch_k", STOCH_FASTK + STOCH_SLOWK + STOCH_SLOWD - 3),
    ("stoch_d", STOCH_FASTK + STOCH_SLOWK + STOCH_SLOWD - 3),
    ("cci_20", CCI_PERIOD - 1),
    ("roc_10", ROC_PERIOD),
    ("trix_15", 3 * (TRIX_PERIOD - 1) + 1),
    ("atr_14", ATR_PERIOD),
    ("bb_upper", BB_PERIOD - 1),
    ("bb_middle", BB_PERIOD - 1),
    ("bb_lower", BB_PERIOD - 1),
    ("bb_width", BB_PERIOD - 1),
    ("bb_pctb", BB_PERIOD - 1),
    ("kc_upper", max(KC_EMA - 1, KC_ATR)),
    ("kc_middle", KC_EMA - 1),
    ("kc_lower", max(KC_EMA - 1, KC_ATR)),
    ("obv", FLOW_WINDOW),
    ("ad", FLOW_WINDOW),
    ("mfi_14", MFI_PERIOD),
    ("vwap_20", VWAP_WINDOW - 1),
    ("return", 1),
    ("log_return", 1),
    ("hl_ratio", 0),
    ("oc_ratio", 0),
    ("volume_sma", VOLUME_LONG - 1),
    ("volume_ratio", VOLUME_SHORT - 1),
    ("adx_14", 2 * ADX_PERIOD - 1),
)

FEATURE_NAMES: Final[tuple[str, ...]] = tuple(name for name, _ in _WARMUPS)
"""The 40 feature names, in column order."""
NUM_FEATURES: Final = len(FEATURE_NAMES)
WARMUPS: Final[dict[str, int]] = dict(_WARMUPS)
"""Per feature: index of the first candle at which it is defined."""
WARMUP_BY_COLUMN: Final[tuple[int, ...]] = tuple(w for _, w in _WARMUPS)
WARMUP: Final = max(WARMUP_BY_COLUMN)
"""Candles before every feature is defined: row WARMUP is the first complete row."""
