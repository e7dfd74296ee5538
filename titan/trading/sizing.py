"""Position sizing: a forecast becomes a target position. Pure functions.

Rule (the target is a position, not an order; the Trader trades the difference):

    edge = prob_up - 0.5                                    in [-0.5, 0.5]
    |edge| <  min_edge  ->  fraction = 0 (flat: a weak signal closes the position)
    |edge| >= min_edge  ->  fraction = clip(edge * 2 * confidence * sizing_scale,
                                            -max_fraction, max_fraction)
    long-only (allow_short = false)  ->  fraction = max(fraction, 0)  (bearish means flat)
    target quantity = fraction * equity / price             (0 when equity <= 0)
"""

from __future__ import annotations

import math

from titan.config.trading import TradingConfig
from titan.trading.bounds import clamp


def valid_forecast(prob_up: float, confidence: float) -> bool:
    """Both finite and in [0, 1] (NaN fails every comparison, so the range test covers it)."""
    return 0.0 <= prob_up <= 1.0 and 0.0 <= confidence <= 1.0


def target_fraction(prob_up: float, confidence: float, config: TradingConfig) -> float:
    """Signed target position as a fraction of equity (see the module rule)."""
    if not valid_forecast(prob_up, confidence):
        raise ValueError(f"invalid forecast: prob_up={prob_up!r}, confidence={confidence!r}")
    edge = prob_up - 0.5
    if abs(edge) < config.min_edge:
        return 0.0
    cap = config.max_fraction
    fraction = clamp(edge * 2.0 * confidence * config.sizing_scale, -cap, cap)
    if fraction < 0.0 and not config.allow_short:  # max(fraction, 0.0), as in `clamp`
        fraction = 0.0
    return fraction


def target_quantity(
    prob_up: float, confidence: float, equity: float, price: float, config: TradingConfig
) -> float:
    """Signed target position in base units: `target_fraction * equity / price`."""
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"price must be finite and > 0, got {price!r}")
    fraction = target_fraction(prob_up, confidence, config)
    if fraction == 0.0 or not (math.isfinite(equity) and equity > 0):
        return 0.0
    return fraction * equity / price
