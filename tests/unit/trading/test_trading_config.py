"""The `[trading]` config section: defaults, strictness, constraints."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from titan.config.trading import TradingConfig


def test_defaults_are_paper_friendly() -> None:
    config = TradingConfig()
    assert (config.starting_cash, config.fee_bps, config.slippage_bps) == (10_000.0, 4.0, 1.0)
    assert not config.allow_short and config.flat_at_end
    assert config.min_order_notional <= config.max_order_notional


def test_unknown_keys_are_errors_and_values_are_frozen() -> None:
    with pytest.raises(ValidationError, match="extra"):
        TradingConfig(fees=3)  # type: ignore[call-arg]
    config = TradingConfig()
    with pytest.raises(ValidationError):
        config.fee_bps = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        {"starting_cash": 0.0},
        {"fee_bps": -1.0},
        {"min_edge": 0.5},
        {"max_fraction": 1.5},
        {"daily_loss_limit": 0.0},
        {"loss_cooldown_trades": -1},
        {"min_order_notional": 100.0, "max_order_notional": 50.0},
    ],
)
def test_out_of_range_values_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TradingConfig(**bad)
