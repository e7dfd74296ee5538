"""Start-up reconciliation over a stub broker: mismatches found, policies applied."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from titan.config.live import LiveConfig
from titan.trading.live_orders import Balance, ExchangeOrder, client_order_id
from titan.trading.portfolio import Portfolio
from titan.trading.reconcile import (
    ReconcileError,
    Tolerance,
    adopt_balances,
    assets_of,
    compare,
    reconcile_on_start,
)
from titan.trading.types import Fill

BTC, ETH = "BTC/USDT", "ETH/USDT"
OWN_ID = "BTC/USDT-1000-0"
PRICES = {BTC: 50_000.0, ETH: 3_000.0}


def _order(client_id: str | None, exchange_id: str = "7", symbol: str = BTC) -> ExchangeOrder:
    return ExchangeOrder(exchange_id, client_id, symbol, "buy", "limit", 0.1, 0.0, 40_000.0, "open")


class StubBroker:
    """Answers from fixed views; records what reconciliation asked it to do."""

    def __init__(self, orders: Sequence[ExchangeOrder], balances: dict[str, Balance]) -> None:
        self.symbols: tuple[str, ...] = (BTC, ETH)
        self.orders, self.balances = list(orders), balances
        self.cancelled: list[str] = []
        self.adopted: list[tuple[str, str | None]] = []

    async def fetch_open_orders(self) -> list[ExchangeOrder]:
        return self.orders

    async def fetch_balances(self) -> dict[str, Balance]:
        return self.balances

    async def cancel_order(self, order: ExchangeOrder) -> bool:
        self.cancelled.append(order.exchange_id)
        return True

    async def adopt(self, order: ExchangeOrder, order_id: str | None = None) -> None:
        self.adopted.append((order.exchange_id, order_id))


def _traded_portfolio() -> Portfolio:
    """10k cash, bought 0.1 BTC at 50k with a 5 USDT fee: cash 4995, 0.1 BTC."""
    portfolio = Portfolio(10_000.0)
    portfolio.apply(Fill("b", BTC, 0, "buy", 0.1, 50_000.0, 5.0))
    return portfolio


def _matching_balances(**extra: Balance) -> dict[str, Balance]:
    return {"USDT": Balance(4_000.0, 995.0), "BTC": Balance(0.1, 0.0), **extra}


def _compare(orders: Sequence[ExchangeOrder], balances: dict[str, Balance]) -> Any:
    portfolio = _traded_portfolio()
    positions = {s: p.quantity for s, p in portfolio.positions.items()}
    return compare(
        (BTC, ETH), positions, portfolio.cash, [OWN_ID], orders, balances, PRICES, Tolerance()
    )


def test_matching_views_have_no_mismatch_and_own_orders_are_resumed() -> None:
    own = _order(client_order_id(OWN_ID))
    found = _compare([own], _matching_balances())
    assert found.mismatches == () and found.own_orders == ((OWN_ID, own),)
    assert found.positions == {BTC: 0.1, ETH: 0.0} and found.cash == pytest.approx(4_995.0)


def test_unknown_orders_and_drift_are_mismatches() -> None:
    balances = _matching_balances(BTC=Balance(0.25, 0.0), ETH=Balance(1.0, 0.0))
    found = _compare([_order("someone-else")], balances)
    kinds = {(m.kind, m.subject) for m in found.mismatches}
    assert kinds == {("unknown_order", "7"), ("position_drift", BTC), ("position_drift", ETH)}


def test_dust_and_rounding_are_not_drift() -> None:
    balances = _matching_balances(BTC=Balance(0.1 + 1e-9, 0.0), ETH=Balance(0.0001, 0.0))
    assert _compare([], balances).mismatches == ()  # 0.3 USDT of ETH < 1 USDT dust


def test_symbols_must_share_one_quote_and_distinct_bases() -> None:
    assert assets_of([BTC, ETH]) == ({BTC: "BTC", ETH: "ETH"}, "USDT")
    with pytest.raises(ReconcileError, match="one quote"):
        assets_of([BTC, "ETH/BTC"])


async def test_unknown_orders_are_cancelled_and_drift_adopted_by_default() -> None:
    own, stranger = _order(client_order_id(OWN_ID), "1"), _order("manual-1", "2")
    broker = StubBroker([own, stranger], _matching_balances(BTC=Balance(0.3, 0.0)))
    portfolio = _traded_portfolio()
    with capture_logs() as logs:
        result = await reconcile_on_start(
            broker, portfolio, [OWN_ID], LiveConfig(), prices=PRICES, ts=5
        )
    assert broker.cancelled == ["2"] and broker.adopted == [("1", OWN_ID)]
    assert {m.kind for m in result.mismatches} == {"unknown_order", "position_drift"}
    events = [e for e in logs if e["event"] == "reconcile_mismatch"]
    assert len(events) == 2 and all(e["log_level"] == "error" for e in events)
    assert portfolio.quantity(BTC) == pytest.approx(0.3) and result.adopted_balances


async def test_unknown_orders_can_be_adopted_and_drift_can_halt() -> None:
    broker = StubBroker([_order("manual-1", "2")], _matching_balances())
    config = LiveConfig(unknown_orders="adopt", position_drift="halt")
    result = await reconcile_on_start(broker, _traded_portfolio(), [], config, prices=PRICES, ts=5)
    assert broker.adopted == [("2", None)] and broker.cancelled == []
    assert result.adopted_orders and not result.adopted_balances
    drifting = StubBroker([], _matching_balances(USDT=Balance(100.0, 0.0)))
    with pytest.raises(ReconcileError, match="halt"):
        await reconcile_on_start(drifting, _traded_portfolio(), [], config, prices=PRICES, ts=5)


async def test_a_fresh_portfolio_takes_the_exchange_balances_without_mismatch() -> None:
    broker = StubBroker([], {"USDT": Balance(1_234.0, 0.0), "ETH": Balance(0.5, 0.0)})
    portfolio = Portfolio(10_000.0)
    config = LiveConfig(position_drift="halt")
    result = await reconcile_on_start(broker, portfolio, [], config, prices=PRICES, ts=5)
    assert result.ok and portfolio.cash == 1_234.0
    assert portfolio.positions[ETH].quantity == 0.5 and portfolio.positions[ETH].avg_price == 3_000
    assert portfolio.equity(PRICES) == pytest.approx(1_234.0 + 1_500.0)


def test_adopted_drift_is_a_transfer_not_profit_or_loss() -> None:
    """After adoption the portfolio's accounting identity still holds and PnL is unchanged."""
    portfolio = _traded_portfolio()
    adopt_balances(portfolio, {BTC: 0.05, ETH: 2.0}, 7_000.0, PRICES, ts=9)
    book = portfolio.cash + sum(p.quantity * p.avg_price for p in portfolio.positions.values())
    assert book == pytest.approx(
        portfolio.starting_cash + portfolio.realized_pnl - portfolio.fees_paid
    )
    assert portfolio.realized_pnl == 0.0 and portfolio.positions[BTC].avg_price == 50_000.0
    adopt_balances(portfolio, {BTC: 0.0, ETH: 2.0}, 7_000.0, PRICES, ts=9)
    assert BTC not in portfolio.positions
    with pytest.raises(ReconcileError, match="no price"):
        adopt_balances(portfolio, {BTC: 1.0}, 7_000.0, {}, ts=9)
