"""The Broker protocol: what the Trader needs from a backtest, paper or live broker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from titan.trading.types import Fill, Order


class BrokerError(RuntimeError):
    """An order the broker could not handle (no reference price, rejected by the venue...)."""


class Broker(Protocol):
    """Executes orders. Async so a live (ccxt) broker can await the exchange.

    `set_prices` hands over the reference prices (the decision candles' closes) at `ts`
    before any order for those symbols: the simulated brokers fill against them, a live
    broker may use them for price-band sanity checks or to place protective limit orders.
    """

    def set_prices(self, prices: Mapping[str, float], ts: int) -> None: ...

    async def submit(self, order: Order) -> list[Fill]:
        """Execute `order`; return its fills now (possibly none, possibly partial)."""
        ...

    async def cancel_all(self) -> int:
        """Cancel every open order; return how many were cancelled."""
        ...

    async def start(self) -> None:
        """Connect and check the markets before the first order (no-op when simulated)."""
        ...

    async def poll_fills(self) -> list[Fill]:
        """Fills that arrived since the last call outside `submit` (resting orders)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
