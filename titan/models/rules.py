"""Rule-based base models: TrendVIC, Oscillator, VolumeMetrix.

Each reads the last timestep of its window (lookback 1) and computes a bounded score in
[-1, 1] from its named features (`titan.features.spec` defines them); a positive score is
the bullish reading of the indicators in their textbook interpretation. Every term is
squashed by ``tanh(x / s)``, where the scale ``s`` puts the term's 90th percentile on
BTC 1m near ``tanh(1) = 0.76``; the score is the mean of the terms.

The score is mapped to ``prob_up`` by a `LogisticCalibrator` fitted in `fit` on past
windows and their realised labels, so the model learns from the data whether (and how
strongly) the textbook reading predicts the next move; on 1m data it may well learn the
opposite sign. Outputs (`predict`):

- ``prob_up = sigmoid(a + b * score)`` (the calibrated logistic); NaN before the first
  successful fit (a missing prediction) and for a window with a non-finite value.
- ``confidence = |2 * prob_up - 1|`` in [0, 1]; 0 when ``prob_up`` is missing.
- ``extras["score"]``: the raw score (NaN for a non-finite window), available before fit.

Scores (``atr = atr_14``, a ratio ``x / atr`` uses ``max(atr, 1e-12)``):

TrendVIC (trend structure, gated by trend strength)::

    direction = mean(tanh((ema_12 - ema_26) / atr),      # EMA12 vs EMA26, in ATRs
                     tanh(2 * macd_hist / atr),           # MACD histogram, in ATRs
                     tanh(-sma_50 / (4 * atr)))           # close above its SMA50
    score = direction * clip(adx_14 / 0.25, 0, 1)         # full weight from ADX 25

Oscillator (mean reversion: oversold is bullish)::

    score = mean(tanh(-rsi_14 / 0.15),                    # RSI 65 -> -0.76
                 clip(-2 * stoch_k, -1, 1),               # slow %K 100 -> -1
                 tanh(-cci_20 / 1.5),                     # CCI +150 -> -0.76
                 tanh(-bb_pctb / 0.5))                    # %B 1 (upper band) -> -0.76

VolumeMetrix (volume flow: buying pressure is bullish)::

    score = mean(tanh(obv / 0.4),                         # 20-bar OBV change / volume
                 tanh(ad / 0.4),                          # 20-bar A/D change / volume
                 tanh(mfi_14 / 0.25),                     # MFI 75 -> +0.76
                 tanh(-vwap_20 / (2 * atr)))              # close above the 20-bar VWAP
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from titan.models.base import BatchOutput, FloatArray, InputSpec
from titan.models.calibration import LogisticCalibrator
from titan.models.dataset import as_windows, finite_rows

_ATR_FLOOR = 1e-12
ADX_FULL = 0.25
"""ADX (/100) from which TrendVIC gives its direction full weight."""


def _per_atr(x: FloatArray, atr: FloatArray) -> FloatArray:
    return np.asarray(x / np.maximum(atr, _ATR_FLOOR))


def _mean(*terms: FloatArray) -> FloatArray:
    return np.asarray(np.mean(np.stack(terms), axis=0))


class RuleModel(ABC):
    """A fixed score formula plus a logistic calibration learned from past labels."""

    name: str
    FEATURES: ClassVar[tuple[str, ...]]

    def __init__(self, l2: float = 1e-3, min_samples: int = 100) -> None:
        self.input_spec = InputSpec(self.FEATURES, lookback=1)
        self.calibrator = LogisticCalibrator(l2=l2, min_samples=min_samples)

    @abstractmethod
    def score_columns(self, columns: Mapping[str, FloatArray]) -> FloatArray:
        """The score from the last timestep's feature columns, by name."""

    def score(self, windows: FloatArray) -> FloatArray:
        """(B,) scores in [-1, 1]; NaN where the window has a non-finite value."""
        w = as_windows(windows, self.input_spec)
        last = w[:, -1, :]
        columns = {name: last[:, j] for j, name in enumerate(self.FEATURES)}
        with np.errstate(all="ignore"):
            raw = self.score_columns(columns)
        return np.where(finite_rows(w), raw, np.nan)

    def predict(self, windows: FloatArray) -> BatchOutput:
        score = self.score(windows)
        prob = self.calibrator.predict(score)
        confidence = np.where(np.isfinite(prob), np.abs(2.0 * prob - 1.0), 0.0)
        return BatchOutput(prob, confidence, {"score": score})

    def fit(self, windows: FloatArray, labels: FloatArray) -> None:
        """Refit the calibrator on these (past) windows; ties and non-finite rows excluded."""
        self.calibrator.fit(self.score(windows), labels)

    @property
    def is_fitted(self) -> bool:
        return self.calibrator.is_fitted

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.name, "calibrator": self.calibrator.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("model") != self.name:
            raise ValueError(f"state of model {state.get('model')!r} given to {self.name!r}")
        self.calibrator.load_state_dict(state["calibrator"])

    def parameter_count(self) -> int:
        """Learned parameters: the calibration's slope and intercept."""
        return 2


class TrendVIC(RuleModel):
    """Trend following: EMA cross, MACD histogram and SMA50 position, gated by ADX."""

    name = "trend_vic"
    FEATURES = ("ema_12", "ema_26", "macd_hist", "sma_50", "atr_14", "adx_14")

    def score_columns(self, columns: Mapping[str, FloatArray]) -> FloatArray:
        atr = columns["atr_14"]
        direction = _mean(
            np.tanh(_per_atr(columns["ema_12"] - columns["ema_26"], atr)),
            np.tanh(2.0 * _per_atr(columns["macd_hist"], atr)),
            np.tanh(-_per_atr(columns["sma_50"], atr) / 4.0),
        )
        gate = np.clip(columns["adx_14"] / ADX_FULL, 0.0, 1.0)
        return np.asarray(direction * gate)


class Oscillator(RuleModel):
    """Mean reversion: RSI, Stochastic %K, CCI and Bollinger %B; oversold is bullish."""

    name = "oscillator"
    FEATURES = ("rsi_14", "stoch_k", "cci_20", "bb_pctb")

    def score_columns(self, columns: Mapping[str, FloatArray]) -> FloatArray:
        return _mean(
            np.tanh(-columns["rsi_14"] / 0.15),
            np.clip(-2.0 * columns["stoch_k"], -1.0, 1.0),
            np.tanh(-columns["cci_20"] / 1.5),
            np.tanh(-columns["bb_pctb"] / 0.5),
        )


class VolumeMetrix(RuleModel):
    """Volume flow: OBV and A/D changes, MFI and the close's distance above the VWAP."""

    name = "volume_metrix"
    FEATURES = ("obv", "ad", "mfi_14", "vwap_20", "atr_14")

    def score_columns(self, columns: Mapping[str, FloatArray]) -> FloatArray:
        return _mean(
            np.tanh(columns["obv"] / 0.4),
            np.tanh(columns["ad"] / 0.4),
            np.tanh(columns["mfi_14"] / 0.25),
            np.tanh(-_per_atr(columns["vwap_20"], columns["atr_14"]) / 2.0),
        )
