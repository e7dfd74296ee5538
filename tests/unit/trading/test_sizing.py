"""Position sizing: thresholds, clipping, long-only and short."""

from __future__ import annotations

import math

import pytest

from titan.config.trading import TradingConfig
from titan.trading import target_fraction, target_quantity

LONG_ONLY = TradingConfig(min_edge=0.02, max_fraction=0.5, sizing_scale=1.0)
SHORTS = TradingConfig(min_edge=0.02, max_fraction=0.5, allow_short=True)


def test_no_position_below_min_edge() -> None:
    assert target_fraction(0.515, 1.0, SHORTS) == 0.0
    assert target_fraction(0.485, 1.0, SHORTS) == 0.0
    assert target_fraction(0.53, 1.0, SHORTS) > 0.0


def test_fraction_is_edge_times_two_times_confidence_times_scale() -> None:
    assert target_fraction(0.6, 0.5, LONG_ONLY) == pytest.approx(0.1)
    scaled = TradingConfig(sizing_scale=2.0)
    assert target_fraction(0.6, 0.5, scaled) == pytest.approx(0.2)


def test_fraction_is_clipped_to_max_fraction() -> None:
    assert target_fraction(1.0, 1.0, LONG_ONLY) == 0.5
    assert target_fraction(0.0, 1.0, SHORTS) == -0.5


def test_long_only_turns_bearish_edge_into_flat() -> None:
    assert target_fraction(0.2, 1.0, LONG_ONLY) == 0.0


def test_allow_short_gives_negative_target_for_bearish_edge() -> None:
    assert target_fraction(0.4, 1.0, SHORTS) == pytest.approx(-0.2)
    assert target_quantity(0.4, 1.0, 10_000.0, 50.0, SHORTS) == pytest.approx(-40.0)


def test_target_quantity_converts_fraction_of_equity_to_base_units() -> None:
    assert target_quantity(0.6, 0.5, 10_000.0, 200.0, LONG_ONLY) == pytest.approx(5.0)


def test_zero_confidence_or_non_positive_equity_means_flat() -> None:
    assert target_quantity(0.9, 0.0, 10_000.0, 100.0, LONG_ONLY) == 0.0
    assert target_quantity(0.9, 1.0, -5.0, 100.0, LONG_ONLY) == 0.0


@pytest.mark.parametrize(("prob_up", "confidence"), [(math.nan, 1.0), (1.2, 1.0), (0.6, -0.1)])
def test_invalid_forecast_is_refused(prob_up: float, confidence: float) -> None:
    with pytest.raises(ValueError, match="invalid forecast"):
        target_fraction(prob_up, confidence, LONG_ONLY)


def test_invalid_price_is_refused() -> None:
    with pytest.raises(ValueError, match="price"):
        target_quantity(0.6, 1.0, 1_000.0, 0.0, LONG_ONLY)
