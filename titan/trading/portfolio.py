"""Portfolio accounting: cash, average-cost positions, realized PnL, fees, round trips.

Accounting rules (`apply(fill)`):

- cash moves by the fill's notional (buys pay, sells receive) and always pays the fee;
- adding to a position (or opening one) moves its average entry price to the
  quantity-weighted average of its entries; reducing it realizes
  `closed_qty * (price - avg_price) * direction` (gross of fees) and leaves avg_price alone;
- a fill larger than the position closes it and opens the remainder the other way at the
  fill price; its fee is split pro rata between the two;
- a round trip runs from flat to flat (or to a flip) and records its gross PnL, all fees
  of its fills and `net_pnl = pnl - fees` (win rate uses net PnL).

Identities (tested): `cash + sum(qty * avg_price) == starting_cash + realized_pnl - fees_paid`
and `equity(prices) == starting_cash + realized_pnl + unrealized_pnl(prices) - fees_paid`.
Memory is bounded: only the newest `max_trades` round trips are kept; counters cover all.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from titan.trading.types import Fill

Direction = Literal["long", "short"]

# A position within this fraction of a closing fill's size is treated as fully closed, so
# exchange rounding (0.1 + 0.2 bought, 0.3 sold) cannot leave a 1e-17 phantom position.
_CLOSE_REL_TOL = 1e-9


@dataclass(frozen=True, slots=True)
class Position:
    """An open position; `quantity` is signed (> 0 long, < 0 short), never 0."""

    quantity: float
    avg_price: float
    entry_ts: int
    entry_qty: float  # total quantity entered during this round trip
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    realized: float = 0.0  # gross PnL realized so far in this round trip
    fees: float = 0.0  # fees of this round trip's fills so far


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A closed trade, flat to flat: prices are averages, `net_pnl = pnl - fees`."""

    symbol: str
    direction: Direction
    entry_ts: int
    exit_ts: int
    quantity: float
    entry_price: float
    exit_price: float
    pnl: float
    fees: float
    net_pnl: float

    @property
    def won(self) -> bool:
        return self.net_pnl > 0

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Portfolio:
    """Cash (quote) and positions; updated only by `apply(fill)`."""

    def __init__(self, starting_cash: float, *, max_trades: int = 10_000) -> None:
        if not (math.isfinite(starting_cash) and starting_cash >= 0):
            raise ValueError("starting_cash must be finite and >= 0")
        self.starting_cash = float(starting_cash)
        self.cash = float(starting_cash)
        self.realized_pnl = 0.0
        self.fees_paid = 0.0
        self.positions: dict[str, Position] = {}
        self.trades: deque[RoundTrip] = deque(maxlen=max_trades)
        self.trade_count = 0
        self.win_count = 0

    # -- queries ---------------------------------------------------------------------------

    def quantity(self, symbol: str) -> float:
        position = self.positions.get(symbol)
        return 0.0 if position is None else position.quantity

    # The sums below are plain loops (they run a few times per decision, and a generator
    # costs more than the one or two positions it visits); like `sum`, they start from an
    # int 0 and add in position order, so no positions gives 0.

    def equity(self, prices: Mapping[str, float]) -> float:
        """Cash plus every position marked at `prices` (which must cover every position)."""
        value: float = 0  # net_exposure(prices), inlined
        for symbol, p in self.positions.items():
            value += p.quantity * _price(prices, symbol)
        return self.cash + value

    def unrealized_pnl(self, prices: Mapping[str, float]) -> float:
        total: float = 0
        for symbol, p in self.positions.items():
            total += p.quantity * (_price(prices, symbol) - p.avg_price)
        return total

    def gross_exposure(self, prices: Mapping[str, float]) -> float:
        """Sum of |position value| in quote."""
        total: float = 0
        for symbol, p in self.positions.items():
            total += abs(p.quantity) * _price(prices, symbol)
        return total

    def net_exposure(self, prices: Mapping[str, float]) -> float:
        """Sum of signed position values in quote."""
        total: float = 0
        for symbol, p in self.positions.items():
            total += p.quantity * _price(prices, symbol)
        return total

    @property
    def win_rate(self) -> float | None:
        return self.win_count / self.trade_count if self.trade_count else None

    # -- updates ---------------------------------------------------------------------------

    def apply(self, fill: Fill) -> list[RoundTrip]:
        """Book `fill`; return the round trips it closed (none, or one)."""
        self.cash -= fill.signed_quantity * fill.price + fill.fee
        self.fees_paid += fill.fee
        position = self.positions.get(fill.symbol)
        if position is None:
            self._open(fill, fill.quantity, fill.fee)
            return []
        if (position.quantity > 0) == (fill.side == "buy"):
            self.positions[fill.symbol] = _add(position, fill)
            return []
        return self._reduce(position, fill)

    def _open(self, fill: Fill, quantity: float, fee: float) -> None:
        signed = quantity if fill.side == "buy" else -quantity
        self.positions[fill.symbol] = Position(signed, fill.price, fill.ts, quantity, fees=fee)

    def _reduce(self, position: Position, fill: Fill) -> list[RoundTrip]:
        held = abs(position.quantity)
        closes_all = fill.quantity >= held * (1 - _CLOSE_REL_TOL)
        closed = held if closes_all else fill.quantity
        close_fee = fill.fee * min(closed / fill.quantity, 1.0)
        direction = 1.0 if position.quantity > 0 else -1.0
        pnl = closed * (fill.price - position.avg_price) * direction
        self.realized_pnl += pnl
        position = replace(
            position,
            quantity=position.quantity - direction * closed,
            exit_qty=position.exit_qty + closed,
            exit_notional=position.exit_notional + closed * fill.price,
            realized=position.realized + pnl,
            fees=position.fees + close_fee,
        )
        if not closes_all:
            self.positions[fill.symbol] = position
            return []
        del self.positions[fill.symbol]
        trip = self._record(fill, position, "long" if direction > 0 else "short")
        remainder = fill.quantity - held
        if remainder > fill.quantity * _CLOSE_REL_TOL:
            self._open(fill, remainder, fill.fee - close_fee)
        return [trip]

    def _record(self, fill: Fill, position: Position, direction: Direction) -> RoundTrip:
        trip = RoundTrip(
            symbol=fill.symbol,
            direction=direction,
            entry_ts=position.entry_ts,
            exit_ts=fill.ts,
            quantity=position.entry_qty,
            entry_price=position.avg_price,
            exit_price=position.exit_notional / position.exit_qty,
            pnl=position.realized,
            fees=position.fees,
            net_pnl=position.realized - position.fees,
        )
        self.trades.append(trip)
        self.trade_count += 1
        self.win_count += trip.won
        return trip

    # -- persistence -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; `load_state_dict` restores it exactly."""
        return {
            "starting_cash": self.starting_cash,
            "cash": self.cash,
            "realized_pnl": self.realized_pnl,
            "fees_paid": self.fees_paid,
            "positions": {s: asdict(p) for s, p in sorted(self.positions.items())},
            "trades": [t.to_dict() for t in self.trades],
            "max_trades": self.trades.maxlen,
            "trade_count": self.trade_count,
            "win_count": self.win_count,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.starting_cash = float(state["starting_cash"])
        self.cash = float(state["cash"])
        self.realized_pnl = float(state["realized_pnl"])
        self.fees_paid = float(state["fees_paid"])
        self.positions = {s: Position(**p) for s, p in state["positions"].items()}
        trips = (RoundTrip(**t) for t in state["trades"])
        self.trades = deque(trips, maxlen=state["max_trades"])
        self.trade_count = int(state["trade_count"])
        self.win_count = int(state["win_count"])

    @classmethod
    def replay(
        cls, starting_cash: float, fills: Iterable[Fill], *, max_trades: int = 10_000
    ) -> Portfolio:
        """The portfolio that results from applying `fills` in order to fresh cash."""
        portfolio = cls(starting_cash, max_trades=max_trades)
        for fill in fills:
            portfolio.apply(fill)
        return portfolio


def _add(position: Position, fill: Fill) -> Position:
    held = abs(position.quantity)
    total = held + fill.quantity
    avg = (held * position.avg_price + fill.quantity * fill.price) / total
    return replace(
        position,
        quantity=position.quantity + fill.signed_quantity,
        avg_price=avg,
        entry_qty=position.entry_qty + fill.quantity,
        fees=position.fees + fill.fee,
    )


def _price(prices: Mapping[str, float], symbol: str) -> float:
    try:
        return prices[symbol]
    except KeyError:
        raise KeyError(f"no price for {symbol}, which has an open position") from None
