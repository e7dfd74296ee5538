"""Risk limits: turn a desired target position into an allowed order, with reasons.

`RiskLimits.check` applies, in this order (each step sees the previous step's result):

1. kill switch       killed -> no order at all (flattening goes through `Trader.flatten_all`,
                     which bypasses these checks).
2. position limit    target clipped to +-max_position_notional / price.
3. daily loss limit  once equity has fallen >= daily_loss_limit (fraction) below the equity
                     first seen on the current UTC day, only reducing orders until the next
                     UTC day (sticky: a recovery the same day does not lift it).
4. cooldown          after `loss_cooldown_trades` consecutive losing round trips (net of fees),
                     only reducing orders for `cooldown_intervals * interval_ms` ms from the
                     losing exit; the streak then restarts from zero.
5. order limit       the order (target - position) clipped to max_order_notional / price.
6. cash limit        a buy that ends long is limited to what cash pays for at the slipped
                     price plus fee (the part that buys back a short is never limited).
7. dust              orders below min_order_notional are skipped, unless they go exactly flat;
                      below dust_notional they are skipped even then (untradable leftovers).

"Reducing" means moving the position towards zero without crossing it. Every step that
changes or blocks the order adds its `RiskReason` to the verdict. Time comes in as ms ints;
nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from titan.config.trading import TradingConfig
from titan.trading.bounds import clamp

DAY_MS = 86_400_000
BPS = 1e-4


class RiskReason(StrEnum):
    """Why an order was blocked, clipped or skipped (logged by the engine)."""

    KILL_SWITCH = "kill_switch"
    POSITION_LIMIT = "position_limit"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    COOLDOWN = "cooldown"
    ORDER_LIMIT = "order_limit"
    CASH_LIMIT = "cash_limit"
    DUST = "dust"
    INVALID_FORECAST = "invalid_forecast"  # raised by the Trader: NaN / out-of-range forecast


class RiskVerdict(NamedTuple):
    """`requested`: the sizing target; `quantity`: the allowed signed order (0: none).

    A NamedTuple rather than a frozen dataclass: just as immutable, and one is built per
    decision, where a frozen dataclass's `__init__` costs several times more.
    """

    requested: float
    position: float
    quantity: float
    reasons: tuple[RiskReason, ...] = ()

    @property
    def target(self) -> float:
        """The position after the allowed order fills."""
        return self.position + self.quantity

    @property
    def blocked(self) -> bool:
        """An order was wanted but none is allowed."""
        return self.quantity == 0.0 and self.requested != self.position


_STAY_FLAT = RiskVerdict(0.0, 0.0, 0.0)


class RiskLimits:
    """Stateful limits for one account (all symbols share the day, streak and cooldown)."""

    def __init__(self, config: TradingConfig, *, interval_ms: int) -> None:
        if interval_ms <= 0:
            raise ValueError("interval_ms must be > 0")
        self.config = config
        self.interval_ms = interval_ms
        self.killed = False
        self.day: int | None = None
        self.day_start_equity = 0.0
        self.halted = False
        self.loss_streak = 0
        self.cooldown_until: int | None = None

    # -- switches and events ---------------------------------------------------------------

    def kill(self) -> None:
        self.killed = True

    def resume(self) -> None:
        self.killed = False

    def observe_equity(self, ts: int, equity: float) -> None:
        """Track the UTC day's starting equity and trip the daily loss limit."""
        day = ts // DAY_MS
        if day != self.day:
            self.day, self.day_start_equity, self.halted = day, equity, False
        floor = self.day_start_equity * (1.0 - self.config.daily_loss_limit)
        if not math.isfinite(equity) or equity <= floor:
            self.halted = True

    def record_round_trip(self, ts: int, net_pnl: float) -> None:
        """Count consecutive losses; the Nth starts a cooldown from `ts`."""
        self.loss_streak = self.loss_streak + 1 if net_pnl < 0 else 0
        needed = self.config.loss_cooldown_trades
        if needed and self.loss_streak >= needed:
            self.cooldown_until = ts + self.config.cooldown_intervals * self.interval_ms
            self.loss_streak = 0

    def in_cooldown(self, ts: int) -> bool:
        return self.cooldown_until is not None and ts < self.cooldown_until

    # -- the check -------------------------------------------------------------------------

    def check(
        self, *, ts: int, equity: float, position: float, target: float, price: float, cash: float
    ) -> RiskVerdict:
        """Observe `equity`, then apply the limits (module docstring) to `target`."""
        self.observe_equity(ts, equity)
        if target == 0.0 and position == 0.0:
            # Flat and staying flat: no limit has anything to add (nor would the kill
            # switch), so the shared verdict serves (a -0.0 input reads as 0.0 in it).
            return _STAY_FLAT
        if self.killed:
            blocked = (RiskReason.KILL_SWITCH,) if target != position else ()
            return RiskVerdict(target, position, 0.0, blocked)
        reasons: list[RiskReason] = []
        allowed = self._limit_target(ts, position, target, price, reasons)
        quantity = self._limit_order(position, allowed - position, price, cash, reasons)
        return RiskVerdict(target, position, quantity, tuple(reasons))

    # Each limit below appends its reason only when it changed the amount (an `if` rather
    # than a helper call: these run on most decisions).

    def _limit_target(
        self, ts: int, position: float, target: float, price: float, reasons: list[RiskReason]
    ) -> float:
        allowed = _clip(target, self.config.max_position_notional / price)
        if allowed != target:
            reasons.append(RiskReason.POSITION_LIMIT)
        if self.halted:
            reduced = _reduce_only(position, allowed)
            if reduced != allowed:
                reasons.append(RiskReason.DAILY_LOSS_LIMIT)
            allowed = reduced
        if self.in_cooldown(ts):
            reduced = _reduce_only(position, allowed)
            if reduced != allowed:
                reasons.append(RiskReason.COOLDOWN)
            allowed = reduced
        return allowed

    def _limit_order(
        self, position: float, wanted: float, price: float, cash: float, reasons: list[RiskReason]
    ) -> float:
        order = _clip(wanted, self.config.max_order_notional / price)
        if order != wanted:
            reasons.append(RiskReason.ORDER_LIMIT)
        if order > 0 and position + order > 0:
            slipped = price * (1.0 + self.config.slippage_bps * BPS)
            unit_cost = slipped * (1.0 + self.config.fee_bps * BPS)
            affordable = max(cash / unit_cost, -position, 0.0)
            if affordable < order:  # min(order, affordable)
                reasons.append(RiskReason.CASH_LIMIT)
                order = affordable
        if order == 0.0:
            return order
        notional = abs(order) * price
        flat = position + order == 0.0
        too_small = notional < self.config.min_order_notional
        untradable = notional < self.config.dust_notional  # even going flat: leave the dust
        if (too_small and not flat) or untradable:
            reasons.append(RiskReason.DUST)
            return 0.0
        return order

    # -- persistence -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "killed": self.killed,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
            "halted": self.halted,
            "loss_streak": self.loss_streak,
            "cooldown_until": self.cooldown_until,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.killed = bool(state["killed"])
        self.day = state["day"]
        self.day_start_equity = float(state["day_start_equity"])
        self.halted = bool(state["halted"])
        self.loss_streak = int(state["loss_streak"])
        self.cooldown_until = state["cooldown_until"]


def _clip(value: float, cap: float) -> float:
    return clamp(value, -cap, cap)


def _reduce_only(position: float, target: float) -> float:
    """`target` limited to [0, position] (long) or [position, 0] (short)."""
    low = 0.0 if position > 0.0 else position  # min(position, 0.0), as in `clamp`
    high = 0.0 if position < 0.0 else position  # max(position, 0.0)
    return clamp(target, low, high)
