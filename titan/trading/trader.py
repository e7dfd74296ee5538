"""`Trader`: forecast -> target position -> risk-checked order -> broker -> portfolio.

The engine calls `on_forecast` once per symbol per closed interval with that candle's close
as `price`. Steps:

1. mark `symbol` at `price` and hand the price to the broker (`set_prices`);
2. equity = portfolio marked at the latest price of every symbol;
3. a forecast that is NaN or outside [0, 1] trades nothing (reason `invalid_forecast`);
4. target = `sizing.target_quantity(...)`; a target worth less than `min_order_notional`
   counts as flat (so dust positions get closed, not left behind);
5. `RiskLimits.check` turns target - position into an allowed signed order, with reasons;
6. a non-zero order becomes a market `Order` (deterministic id) for the broker; its fills go
   to the portfolio, and closed round trips to the risk limits (loss streak).

Both `on_forecast` and `flatten_all` return the fills; `last_report` holds the full story of
the latest call (orders, fills, round trips, risk reasons) for the engine's ledger and logs.
Broker errors propagate to the caller. No randomness, no clock reads: same inputs, same ids,
same fills.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from titan.config.trading import TradingConfig
from titan.trading.broker import Broker
from titan.trading.portfolio import Portfolio, RoundTrip
from titan.trading.risk import RiskLimits, RiskReason, RiskVerdict
from titan.trading.sizing import target_quantity, valid_forecast
from titan.trading.types import Fill, Order, Side, order_id


class TradeReport(NamedTuple):
    """What one `on_forecast` / `flatten_all` call did.

    A NamedTuple rather than a frozen dataclass: just as immutable, and one is built per
    decision, where a frozen dataclass's `__init__` costs several times more.
    """

    ts: int
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    round_trips: tuple[RoundTrip, ...] = ()
    verdict: RiskVerdict | None = None  # on_forecast only
    reasons: tuple[RiskReason, ...] = ()
    symbol: str | None = None  # on_forecast only


class Trader:
    """Orchestrates sizing, risk, broker and portfolio for one account."""

    def __init__(
        self,
        config: TradingConfig,
        broker: Broker,
        *,
        interval_ms: int,
        portfolio: Portfolio | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self.portfolio = Portfolio(config.starting_cash) if portfolio is None else portfolio
        self.risk = RiskLimits(config, interval_ms=interval_ms)
        self.last_report: TradeReport | None = None
        self._marks: dict[str, float] = {}
        self._seq: dict[str, tuple[int, int]] = {}  # symbol -> (ts, last seq at that ts)

    # -- trading ---------------------------------------------------------------------------

    async def on_forecast(
        self, symbol: str, ts: int, price: float, prob_up: float, confidence: float
    ) -> list[Fill]:
        """Trade `symbol` towards the position the forecast asks for (module docstring)."""
        self._mark(symbol, price, ts)
        book = self.portfolio
        equity = book.equity(self._marks)
        if not valid_forecast(prob_up, confidence):
            self.risk.observe_equity(ts, equity)
            reasons = (RiskReason.INVALID_FORECAST,)
            self.last_report = TradeReport(ts, reasons=reasons, symbol=symbol)
            return []
        target = self._target(prob_up, confidence, equity, price)
        verdict = self.risk.check(
            ts=ts,
            equity=equity,
            position=book.quantity(symbol),
            target=target,
            price=price,
            cash=book.cash,
        )
        orders = self._orders(symbol, ts, verdict.quantity, "forecast")
        fills: list[Fill] = []
        trips: tuple[RoundTrip, ...] = ()
        if orders:  # usually none: skip the broker round trip
            fills, trips = await self._execute(orders)
        self.last_report = TradeReport(
            ts, orders, tuple(fills), trips, verdict, verdict.reasons, symbol
        )
        return fills

    async def poll(self) -> list[Fill]:
        """Book the fills the broker received outside `submit` (live resting orders)."""
        fills = await self.broker.poll_fills()
        if fills:
            self.book(fills)
        return fills

    def book(self, fills: Iterable[Fill]) -> list[RoundTrip]:
        """Book fills into the portfolio; closed round trips feed the risk limits."""
        trips: list[RoundTrip] = []
        for fill in fills:
            for trip in self.portfolio.apply(fill):
                self.risk.record_round_trip(fill.ts, trip.net_pnl)
                trips.append(trip)
        return trips

    async def flatten_all(self, prices: Mapping[str, float], ts: int) -> list[Fill]:
        """Close every position with market orders, bypassing risk limits (and kill switch).

        `prices` should cover the open positions; a missing symbol uses its last mark.
        """
        self._check_prices(prices)
        self._marks.update(prices)
        held = sorted(self.portfolio.positions)
        self.broker.set_prices({symbol: self._marks[symbol] for symbol in held}, ts)
        orders: list[Order] = []
        for symbol in held:
            orders += self._orders(symbol, ts, -self.portfolio.quantity(symbol), "flatten")
        fills, trips = await self._execute(tuple(orders))
        self.last_report = TradeReport(ts, tuple(orders), tuple(fills), trips)
        return fills

    def kill(self) -> None:
        """Stop trading: `on_forecast` places no orders until `resume`. (A live engine also
        awaits `broker.cancel_all()` and, if asked, `flatten_all`.)"""
        self.risk.kill()

    def resume(self) -> None:
        self.risk.resume()

    @property
    def killed(self) -> bool:
        return self.risk.killed

    @property
    def marks(self) -> Mapping[str, float]:
        """The latest price seen for every symbol (a copy)."""
        return self._marks.copy()

    # -- steps -----------------------------------------------------------------------------

    def _mark(self, symbol: str, price: float, ts: int) -> None:
        _check_price(symbol, price)
        self._marks[symbol] = price
        self.broker.set_prices({symbol: price}, ts)

    @staticmethod
    def _check_prices(prices: Mapping[str, float]) -> None:
        for symbol, price in prices.items():
            _check_price(symbol, price)

    def _target(self, prob_up: float, confidence: float, equity: float, price: float) -> float:
        target = target_quantity(prob_up, confidence, equity, price, self.config)
        return 0.0 if abs(target) * price < self.config.min_order_notional else target

    def _orders(self, symbol: str, ts: int, quantity: float, reason: str) -> tuple[Order, ...]:
        if quantity == 0.0:
            return ()
        side: Side = "buy" if quantity > 0 else "sell"
        oid = order_id(symbol, ts, self._next_seq(symbol, ts))
        return (Order(oid, symbol, ts, side, abs(quantity), reason=reason),)

    def _next_seq(self, symbol: str, ts: int) -> int:
        last = self._seq.get(symbol)
        seq = last[1] + 1 if last is not None and last[0] == ts else 0
        self._seq[symbol] = (ts, seq)
        return seq

    async def _execute(self, orders: tuple[Order, ...]) -> tuple[list[Fill], tuple[RoundTrip, ...]]:
        fills: list[Fill] = []
        trips: list[RoundTrip] = []
        for order in orders:
            placed = await self.broker.submit(order)
            fills += placed
            trips += self.book(placed)
        return fills, tuple(trips)

    # -- reporting and persistence ---------------------------------------------------------

    def snapshot(self, prices: Mapping[str, float] | None = None) -> dict[str, Any]:
        """JSON-serialisable account state for the ledger, marked at `prices` (default: the
        latest marks; given prices override them for this snapshot only)."""
        marks = {**self._marks, **(prices or {})}
        book = self.portfolio
        equity = book.equity(marks)
        gross = book.gross_exposure(marks)
        return {
            "equity": equity,
            "cash": book.cash,
            "realized_pnl": book.realized_pnl,
            "unrealized_pnl": book.unrealized_pnl(marks),
            "fees_paid": book.fees_paid,
            "gross_exposure": gross,
            "net_exposure": book.net_exposure(marks),
            "exposure": gross / equity if equity > 0 else None,
            "positions": _positions(book, marks),
            "trade_count": book.trade_count,
            "win_count": book.win_count,
            "win_rate": book.win_rate,
            "killed": self.risk.killed,
            "halted": self.risk.halted,
            "cooldown_until": self.risk.cooldown_until,
        }

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable; `load_state_dict` resumes exactly (ids and limits included)."""
        return {
            "portfolio": self.portfolio.state_dict(),
            "risk": self.risk.state_dict(),
            "marks": dict(sorted(self._marks.items())),
            "seq": {symbol: list(last) for symbol, last in sorted(self._seq.items())},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.portfolio.load_state_dict(state["portfolio"])
        self.risk.load_state_dict(state["risk"])
        self._marks = {symbol: float(price) for symbol, price in state["marks"].items()}
        self._seq = {symbol: (int(ts), int(n)) for symbol, (ts, n) in state["seq"].items()}


def _check_price(symbol: str, price: float) -> None:
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"price for {symbol} must be finite and > 0, got {price!r}")


def _positions(book: Portfolio, marks: Mapping[str, float]) -> dict[str, dict[str, float]]:
    return {
        symbol: {
            "quantity": p.quantity,
            "avg_price": p.avg_price,
            "price": marks[symbol],
            "value": p.quantity * marks[symbol],
            "unrealized_pnl": p.quantity * (marks[symbol] - p.avg_price),
        }
        for symbol, p in sorted(book.positions.items())
    }
