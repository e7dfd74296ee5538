"""Start-up reconciliation: the exchange's open orders and balances against the ledger.

`compare` is pure. Over the traded symbols (spot: a position is the base asset's balance,
free + locked; cash is the common quote asset's balance) it finds:

- `unknown_order`: an open order whose client id is not that of a known (ledger) order id
  (the ledger's fills and its journal of submitted orders, see `CcxtBroker.journal`); the
  known ones are Titan's own resting orders and are resumed (watched for fills);
- `position_drift`: a base balance that differs from the portfolio's position by more than
  `drift_tolerance` (relative) and is worth more than `dust_notional`;
- `cash_drift`: the quote balance differs from the portfolio's cash (same tolerances).

`reconcile_on_start` fetches both views (a failure propagates: no trading on an unknown
state), logs every mismatch as an error event `reconcile_mismatch`, then applies the policy
of `LiveConfig`: unknown orders are cancelled or adopted (watched, their fills booked);
drift is adopted (the exchange is the truth: `adopt_balances`) or halts the start with a
`ReconcileError`. A fresh portfolio (no trades, no positions) takes the exchange balances
without a mismatch: that is how a live ledger starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import structlog

from titan.config.live import LiveConfig
from titan.trading.live_orders import Balance, ExchangeOrder, client_order_id
from titan.trading.portfolio import Portfolio, Position

log = structlog.get_logger(__name__)

MismatchKind = Literal["unknown_order", "position_drift", "cash_drift"]


class ReconcileError(RuntimeError):
    """The exchange and the ledger disagree and the policy says not to trade."""


class ReconcileBroker(Protocol):
    """What reconciliation needs from a live broker (`CcxtBroker` implements it)."""

    @property
    def symbols(self) -> Sequence[str]: ...

    async def fetch_open_orders(self) -> list[ExchangeOrder]: ...

    async def fetch_balances(self) -> dict[str, Balance]: ...

    async def cancel_order(self, order: ExchangeOrder) -> bool: ...

    async def adopt(self, order: ExchangeOrder, order_id: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: MismatchKind
    subject: str  # symbol, asset or exchange order id
    ledger: float | None
    exchange: float | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Tolerance:
    relative: float = 1e-6
    dust_notional: float = 1.0

    def drifted(self, ledger: float, exchange: float, price: float | None) -> bool:
        diff = abs(exchange - ledger)
        if diff <= self.relative * max(abs(exchange), abs(ledger)):
            return False
        return price is None or diff * price > self.dust_notional


@dataclass(frozen=True)
class Comparison:
    """`compare`'s verdict; `positions` and `cash` are the exchange's view."""

    mismatches: tuple[Mismatch, ...]
    own_orders: tuple[tuple[str, ExchangeOrder], ...]  # (Titan order id, order)
    unknown_orders: tuple[ExchangeOrder, ...]
    positions: Mapping[str, float]
    cash: float


@dataclass(frozen=True)
class ReconcileResult:
    mismatches: tuple[Mismatch, ...] = ()
    resumed: tuple[ExchangeOrder, ...] = ()
    cancelled: tuple[ExchangeOrder, ...] = ()
    adopted_orders: tuple[ExchangeOrder, ...] = ()
    adopted_balances: bool = False
    positions: Mapping[str, float] = field(default_factory=dict)
    cash: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches


def assets_of(symbols: Sequence[str]) -> tuple[dict[str, str], str]:
    """({symbol: base asset}, the one quote asset) of spot symbols such as `BTC/USDT`."""
    bases: dict[str, str] = {}
    quotes: set[str] = set()
    for symbol in symbols:
        base, _, quote = symbol.partition(":")[0].partition("/")
        if not (base and quote):
            raise ReconcileError(f"cannot tell base and quote of {symbol!r}")
        bases[symbol] = base
        quotes.add(quote)
    if len(quotes) != 1 or len(set(bases.values())) != len(bases):
        raise ReconcileError(
            f"symbols {list(symbols)} must share one quote asset and have distinct base assets"
        )
    return bases, quotes.pop()


def compare(
    symbols: Sequence[str],
    positions: Mapping[str, float],
    cash: float,
    known_order_ids: Iterable[str],
    open_orders: Sequence[ExchangeOrder],
    balances: Mapping[str, Balance],
    prices: Mapping[str, float],
    tolerance: Tolerance,
) -> Comparison:
    """The ledger's view (`positions`, `cash`, `known_order_ids`) against the exchange's."""
    own_ids = {client_order_id(order_id): order_id for order_id in known_order_ids}
    own = tuple((own_ids[o.client_id], o) for o in open_orders if o.client_id in own_ids)
    unknown = tuple(o for o in open_orders if o.client_id not in own_ids)
    mismatches = [
        Mismatch("unknown_order", o.exchange_id, None, o.amount, _describe_order(o))
        for o in unknown
    ]
    bases, quote = assets_of(symbols)
    actual = {s: _total(balances, base) for s, base in bases.items()}
    for symbol, quantity in actual.items():
        held = positions.get(symbol, 0.0)
        if tolerance.drifted(held, quantity, prices.get(symbol)):
            mismatches.append(Mismatch("position_drift", symbol, held, quantity, bases[symbol]))
    exchange_cash = _total(balances, quote)
    if tolerance.drifted(cash, exchange_cash, 1.0):
        mismatches.append(Mismatch("cash_drift", quote, cash, exchange_cash))
    return Comparison(tuple(mismatches), own, unknown, actual, exchange_cash)


def _total(balances: Mapping[str, Balance], asset: str) -> float:
    balance = balances.get(asset)
    return 0.0 if balance is None else balance.total


def _describe_order(order: ExchangeOrder) -> str:
    return (
        f"{order.symbol} {order.side} {order.type} {order.amount} @ {order.price} "
        f"(client id {order.client_id})"
    )


async def reconcile_on_start(
    broker: ReconcileBroker,
    portfolio: Portfolio,
    known_order_ids: Iterable[str],
    config: LiveConfig,
    *,
    prices: Mapping[str, float],
    ts: int,
) -> ReconcileResult:
    """Fetch, compare, log and apply the policy (module docstring)."""
    open_orders = await broker.fetch_open_orders()
    balances = await broker.fetch_balances()
    positions = {s: p.quantity for s, p in portfolio.positions.items()}
    tolerance = Tolerance(config.drift_tolerance, config.dust_notional)
    found = compare(
        broker.symbols,
        positions,
        portfolio.cash,
        known_order_ids,
        open_orders,
        balances,
        prices,
        tolerance,
    )
    drift = [m for m in found.mismatches if m.kind != "unknown_order"]
    fresh = portfolio.trade_count == 0 and not portfolio.positions
    if fresh and drift:
        log.info("reconcile_initial_balances", positions=dict(found.positions), cash=found.cash)
        drift = []
    mismatches = tuple(m for m in found.mismatches if m.kind == "unknown_order") + tuple(drift)
    for mismatch in mismatches:
        log.error("reconcile_mismatch", **_mismatch_fields(mismatch))
    if drift and config.position_drift == "halt":
        raise ReconcileError(
            f"{len(drift)} balance mismatch(es) between ledger and exchange; "
            'live.position_drift = "halt" refuses to trade (see reconcile_mismatch events)'
        )
    result = await _apply(broker, portfolio, found, config, bool(drift) or fresh, prices, ts)
    result = replace(result, mismatches=mismatches)
    log.info(
        "reconcile_done",
        mismatches=len(mismatches),
        resumed=len(result.resumed),
        cancelled=len(result.cancelled),
        adopted_orders=len(result.adopted_orders),
        adopted_balances=result.adopted_balances,
    )
    return result


async def _apply(
    broker: ReconcileBroker,
    portfolio: Portfolio,
    found: Comparison,
    config: LiveConfig,
    adopt_balances_now: bool,
    prices: Mapping[str, float],
    ts: int,
) -> ReconcileResult:
    for order_id, order in found.own_orders:
        await broker.adopt(order, order_id)
    cancelled: list[ExchangeOrder] = []
    adopted: list[ExchangeOrder] = []
    for order in found.unknown_orders:
        if config.unknown_orders == "adopt":
            await broker.adopt(order)
            adopted.append(order)
        elif await broker.cancel_order(order):
            cancelled.append(order)
    if adopt_balances_now:
        adopt_balances(portfolio, found.positions, found.cash, prices, ts)
    return ReconcileResult(
        resumed=tuple(order for _, order in found.own_orders),
        cancelled=tuple(cancelled),
        adopted_orders=tuple(adopted),
        adopted_balances=adopt_balances_now,
        positions=found.positions,
        cash=found.cash,
    )


def _mismatch_fields(mismatch: Mismatch) -> dict[str, object]:
    return {
        "kind": mismatch.kind,
        "subject": mismatch.subject,
        "ledger": mismatch.ledger,
        "exchange": mismatch.exchange,
        "detail": mismatch.detail,
    }


def adopt_balances(
    portfolio: Portfolio,
    positions: Mapping[str, float],
    cash: float,
    prices: Mapping[str, float],
    ts: int,
) -> None:
    """Make the portfolio hold `positions` and `cash` (the exchange's balances).

    A position that keeps its direction keeps its average price; a new one is entered at
    `prices[symbol]`. The difference in book value is booked as a deposit or withdrawal
    (`starting_cash` moves), not as profit or loss, so the portfolio's identities hold.
    """
    before = _book_value(portfolio)
    for symbol, quantity in positions.items():
        _set_position(portfolio, symbol, quantity, prices, ts)
    portfolio.cash = cash
    portfolio.starting_cash += _book_value(portfolio) - before


def _book_value(portfolio: Portfolio) -> float:
    return portfolio.cash + sum(p.quantity * p.avg_price for p in portfolio.positions.values())


def _set_position(
    portfolio: Portfolio, symbol: str, quantity: float, prices: Mapping[str, float], ts: int
) -> None:
    current = portfolio.positions.get(symbol)
    if quantity == 0.0:
        portfolio.positions.pop(symbol, None)
    elif current is not None and (current.quantity > 0) == (quantity > 0):
        added = max(abs(quantity) - abs(current.quantity), 0.0)
        portfolio.positions[symbol] = replace(
            current, quantity=quantity, entry_qty=current.entry_qty + added
        )
    else:
        price = prices.get(symbol)
        if price is None:
            raise ReconcileError(f"no price for {symbol} to value the adopted position")
        portfolio.positions[symbol] = Position(quantity, price, ts, abs(quantity))
