"""`[trading]`: simulated fills, position sizing and risk limits (see `titan/trading`).

Amounts are in the quote currency (USDT for the default symbols); fractions are of equity.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from titan.config.base import Section


class TradingConfig(Section):
    starting_cash: float = Field(10_000.0, gt=0.0, description="paper / backtest cash (quote)")
    fee_bps: float = Field(4.0, ge=0.0, le=1_000.0, description="fee per fill on notional")
    slippage_bps: float = Field(
        1.0, ge=0.0, le=1_000.0, description="market fills: buys pay up, sells receive less"
    )
    min_edge: float = Field(
        0.02, ge=0.0, lt=0.5, description="no position unless |prob_up - 0.5| >= min_edge"
    )
    max_fraction: float = Field(
        0.5, gt=0.0, le=1.0, description="largest target position per symbol (equity fraction)"
    )
    sizing_scale: float = Field(
        1.0, gt=0.0, description="fraction = clip(edge * 2 * confidence * sizing_scale)"
    )
    allow_short: bool = Field(False, description="false: long-only, a bearish edge means flat")
    max_position_notional: float = Field(5_000.0, gt=0.0, description="per symbol (quote)")
    max_order_notional: float = Field(2_500.0, gt=0.0, description="per order (quote)")
    dust_notional: float = Field(
        1.0,
        ge=0.0,
        description="orders worth less than this (quote) are never sent, not even to go flat: "
        "an exchange's lot step and base-asset fees leave untradable dust",
    )
    min_order_notional: float = Field(
        10.0, ge=0.0, description="smaller orders are skipped as dust, unless they go flat"
    )
    daily_loss_limit: float = Field(
        0.05, gt=0.0, le=1.0, description="equity drop from the UTC day's start -> reduce only"
    )
    loss_cooldown_trades: int = Field(
        3, ge=0, description="consecutive losing round trips that start a cooldown (0: never)"
    )
    cooldown_intervals: int = Field(60, ge=0, description="intervals without new entries")
    flat_at_end: bool = Field(True, description="close every position when a backtest ends")

    @model_validator(mode="after")
    def _order_limits_consistent(self) -> TradingConfig:
        if self.min_order_notional > self.max_order_notional:
            raise ValueError(
                f"trading.min_order_notional ({self.min_order_notional}) must not exceed "
                f"trading.max_order_notional ({self.max_order_notional})"
            )
        return self
