"""`SimBroker`: deterministic simulated fills for backtest and paper trading.

Rules (all prices relative to the reference price set by `set_prices`, i.e. the decision
candle's close; the broker never reads a clock):

- Market orders fill completely at once: buys at `ref * (1 + slippage_bps / 1e4)`, sells at
  `ref * (1 - slippage_bps / 1e4)`.
- Limit orders are immediate-or-cancel: a buy fills only if `ref <= limit_price`, a sell only
  if `ref >= limit_price` (the price has crossed the limit); the fill price is the market
  fill price, capped at the limit (a buy never pays more, a sell never receives less).
  Otherwise nothing fills and nothing rests, so `cancel_all` has nothing to cancel.
- Every fill pays `fee_bps / 1e4` of its notional (quantity * fill price) as a taker fee.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from titan.trading.broker import BrokerError
from titan.trading.types import Fill, Order

BPS = 1e-4


class SimBroker:
    """Fills orders against the latest reference prices, with fees and slippage in bps."""

    def __init__(self, *, fee_bps: float, slippage_bps: float) -> None:
        if not (fee_bps >= 0 and slippage_bps >= 0):
            raise ValueError("fee_bps and slippage_bps must be >= 0")
        self.fee_rate = fee_bps * BPS
        self.slippage_rate = slippage_bps * BPS
        self._prices: dict[str, float] = {}
        self._ts: int | None = None

    def set_prices(self, prices: Mapping[str, float], ts: int) -> None:
        """Reference prices at `ts` (merged into the ones already known)."""
        for symbol, price in prices.items():
            if not (math.isfinite(price) and price > 0):
                raise ValueError(f"reference price for {symbol} must be finite and > 0")
        self._prices.update(prices)
        self._ts = ts

    async def submit(self, order: Order) -> list[Fill]:
        return self.execute(order)

    async def cancel_all(self) -> int:
        return 0  # simulated orders never rest

    async def start(self) -> None:
        return None

    async def poll_fills(self) -> list[Fill]:
        return []  # every simulated fill is returned by `submit`

    async def close(self) -> None:
        return None

    def execute(self, order: Order) -> list[Fill]:
        """The synchronous core of `submit`."""
        ref = self._reference(order.symbol)
        price = self.market_price(order.side == "buy", ref)
        if order.type == "limit":
            limit = order.limit_price
            assert limit is not None  # guaranteed by Order validation
            if not _crossed(order.side == "buy", ref, limit):
                return []
            price = min(price, limit) if order.side == "buy" else max(price, limit)
        fee = order.quantity * price * self.fee_rate
        ts = order.ts if self._ts is None else self._ts
        return [Fill(order.id, order.symbol, ts, order.side, order.quantity, price, fee)]

    def market_price(self, buy: bool, ref: float) -> float:
        """The slipped fill price of a market order: buys pay up, sells receive less."""
        return ref * (1 + self.slippage_rate) if buy else ref * (1 - self.slippage_rate)

    def _reference(self, symbol: str) -> float:
        try:
            return self._prices[symbol]
        except KeyError:
            raise BrokerError(f"no reference price for {symbol}; call set_prices first") from None


def _crossed(buy: bool, ref: float, limit: float) -> bool:
    return ref <= limit if buy else ref >= limit
