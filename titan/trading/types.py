"""Trading domain types: orders and fills (plain, frozen, JSON-friendly values).

Timestamps are ms since the epoch (UTC); quantities are in base units, prices and fees in
the quote currency. Both types validate themselves on construction, so a broker or the
portfolio never sees a NaN quantity or a negative fee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
Liquidity = Literal["maker", "taker"]

SIDES: tuple[Side, ...] = ("buy", "sell")
ORDER_TYPES: tuple[OrderType, ...] = ("market", "limit")
LIQUIDITIES: tuple[Liquidity, ...] = ("maker", "taker")


def order_id(symbol: str, ts: int, seq: int) -> str:
    """Deterministic order id: `BTC/USDT-1700000000000-0`; a replay gives identical ids."""
    return f"{symbol}-{ts}-{seq}"


def side_sign(side: Side) -> int:
    """+1 for a buy (position goes up), -1 for a sell."""
    return 1 if side == "buy" else -1


def _require_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Order:
    """An instruction to trade `quantity` (> 0) of `symbol`; `side` gives the direction."""

    id: str
    symbol: str
    ts: int
    side: Side
    quantity: float
    type: OrderType = "market"
    limit_price: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        _require_choice("side", self.side, SIDES)
        _require_choice("type", self.type, ORDER_TYPES)
        _require_positive("quantity", self.quantity)
        if self.type == "limit":
            if self.limit_price is None:
                raise ValueError("a limit order needs a limit_price")
            _require_positive("limit_price", self.limit_price)
        elif self.limit_price is not None:
            raise ValueError("a market order takes no limit_price")

    @property
    def signed_quantity(self) -> float:
        return side_sign(self.side) * self.quantity

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution: `price` is after slippage, `fee` is in quote currency on the notional."""

    order_id: str
    symbol: str
    ts: int
    side: Side
    quantity: float
    price: float
    fee: float
    liquidity: Liquidity = "taker"

    def __post_init__(self) -> None:
        _require_choice("side", self.side, SIDES)
        _require_choice("liquidity", self.liquidity, LIQUIDITIES)
        _require_positive("quantity", self.quantity)
        _require_positive("price", self.price)
        if not (math.isfinite(self.fee) and self.fee >= 0):
            raise ValueError(f"fee must be finite and >= 0, got {self.fee!r}")

    @property
    def notional(self) -> float:
        return self.quantity * self.price

    @property
    def signed_quantity(self) -> float:
        return side_sign(self.side) * self.quantity

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fill:
        return cls(**data)
