"""Orders, fills and the simulated broker's fee / slippage arithmetic."""

from __future__ import annotations

import math

import pytest

from titan.trading import Broker, BrokerError, Fill, Order, Portfolio, SimBroker, order_id


def _market(side: str, quantity: float = 1.0, *, seq: int = 0) -> Order:
    return Order(order_id("BTC/USDT", 60_000, seq), "BTC/USDT", 60_000, side, quantity)  # type: ignore[arg-type]


def test_order_id_is_deterministic_from_symbol_ts_and_seq() -> None:
    assert order_id("BTC/USDT", 1_700_000_000_000, 2) == "BTC/USDT-1700000000000-2"
    assert order_id("BTC/USDT", 5, 0) == order_id("BTC/USDT", 5, 0) != order_id("BTC/USDT", 5, 1)


@pytest.mark.parametrize("quantity", [0.0, -1.0, math.nan, math.inf])
def test_order_rejects_non_positive_or_non_finite_quantity(quantity: float) -> None:
    with pytest.raises(ValueError, match="quantity"):
        Order("x", "BTC/USDT", 0, "buy", quantity)


def test_order_limit_price_must_match_type() -> None:
    with pytest.raises(ValueError, match="limit_price"):
        Order("x", "BTC/USDT", 0, "buy", 1.0, type="limit")
    with pytest.raises(ValueError, match="market order"):
        Order("x", "BTC/USDT", 0, "buy", 1.0, limit_price=10.0)
    with pytest.raises(ValueError, match="side"):
        Order("x", "BTC/USDT", 0, "hold", 1.0)  # type: ignore[arg-type]


def test_fill_rejects_negative_fee_and_round_trips_through_dict() -> None:
    with pytest.raises(ValueError, match="fee"):
        Fill("x", "BTC/USDT", 0, "buy", 1.0, 100.0, -0.1)
    fill = Fill("x", "BTC/USDT", 0, "sell", 2.0, 100.0, 0.08)
    assert Fill.from_dict(fill.to_dict()) == fill
    assert fill.signed_quantity == -2.0 and fill.notional == 200.0
    order = _market("buy")
    assert Order.from_dict(order.to_dict()) == order


def test_sim_broker_satisfies_the_broker_protocol() -> None:
    broker: Broker = SimBroker(fee_bps=4, slippage_bps=1)
    assert isinstance(broker, SimBroker)


async def test_market_buy_pays_slippage_up_and_fee_on_slipped_notional() -> None:
    broker = SimBroker(fee_bps=4, slippage_bps=1)
    broker.set_prices({"BTC/USDT": 100.0}, 60_000)
    [fill] = await broker.submit(_market("buy", 2.0))
    assert fill.price == pytest.approx(100.01, rel=1e-15)
    assert fill.fee == pytest.approx(2.0 * 100.01 * 0.0004, rel=1e-15)
    assert (fill.ts, fill.side, fill.quantity, fill.liquidity) == (60_000, "buy", 2.0, "taker")


async def test_hand_computed_round_trip_with_fees_and_slippage() -> None:
    """Buy 1 @ ref 100, sell 1 @ ref 110, 1 bps slippage, 4 bps fee: net +9.8950004."""
    broker = SimBroker(fee_bps=4, slippage_bps=1)
    book = Portfolio(10_000.0)
    broker.set_prices({"BTC/USDT": 100.0}, 60_000)
    [buy] = await broker.submit(_market("buy"))
    broker.set_prices({"BTC/USDT": 110.0}, 120_000)
    [sell] = await broker.submit(_market("sell", seq=1))
    assert sell.price == pytest.approx(109.989, rel=1e-15)  # 110 * (1 - 0.0001)
    assert sell.fee == pytest.approx(0.0439956, rel=1e-12)  # 109.989 * 0.0004
    book.apply(buy)
    [trip] = book.apply(sell)
    assert buy.fee == pytest.approx(0.040004, rel=1e-12)  # 100.01 * 0.0004
    assert trip.pnl == pytest.approx(9.979, rel=1e-12)  # 109.989 - 100.01
    assert trip.fees == pytest.approx(0.0839996, rel=1e-12)
    assert trip.net_pnl == pytest.approx(9.8950004, rel=1e-12)
    assert book.cash == pytest.approx(10_009.8950004, rel=1e-14)
    assert book.positions == {} and trip.won


async def test_limit_order_fills_only_when_the_price_has_crossed() -> None:
    broker = SimBroker(fee_bps=0, slippage_bps=10)
    broker.set_prices({"BTC/USDT": 100.0}, 0)
    below = Order("a", "BTC/USDT", 0, "buy", 1.0, type="limit", limit_price=99.0)
    assert await broker.submit(below) == []
    at = Order("b", "BTC/USDT", 0, "buy", 1.0, type="limit", limit_price=100.05)
    [fill] = await broker.submit(at)
    assert fill.price == 100.05  # slipped 100.1 capped at the limit
    sell = Order("c", "BTC/USDT", 0, "sell", 1.0, type="limit", limit_price=100.5)
    assert await broker.submit(sell) == []
    assert await broker.cancel_all() == 0  # IOC: nothing rests


async def test_sim_broker_refuses_symbols_without_a_reference_price() -> None:
    broker = SimBroker(fee_bps=4, slippage_bps=1)
    with pytest.raises(BrokerError, match="no reference price"):
        await broker.submit(_market("buy"))
    with pytest.raises(ValueError, match="finite"):
        broker.set_prices({"BTC/USDT": math.nan}, 0)
