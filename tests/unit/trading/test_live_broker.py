"""CcxtBroker against the fake Binance spot server on 127.0.0.1: placing, reading back fills,
resting limit orders, cancelling, idempotent retries and rejections."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from structlog.testing import capture_logs

from titan.config.live import LiveConfig
from titan.data.exchange import Backoff
from titan.engine.ledger import Ledger
from titan.ops.secrets import Credentials
from titan.testing.fake_exchange import FakeExchange, FakeSeries
from titan.trading.live_broker import CcxtBroker, make_live_broker
from titan.trading.live_orders import LiveBrokerError, client_order_id
from titan.trading.types import Order, order_id

MINUTE = 60_000
BTC = "BTC/USDT"
FAST = Backoff(base_s=0.005, cap_s=0.02, max_attempts=4)


class Clock:
    """The fake server's 'now', moved by the tests."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def candles(sample_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(sample_dir / "binanceusdm_BTCUSDT_1m.parquet").head(3000)


@pytest.fixture
def t0(candles: pl.DataFrame) -> int:
    """The decision candle's open time; 'now' is its close (the next candle is forming)."""
    return int(candles["timestamp"][2000])


@pytest.fixture
def clock(t0: int) -> Clock:
    return Clock(t0 + MINUTE)


@pytest.fixture
def fake(candles: pl.DataFrame, clock: Clock) -> Iterator[FakeExchange]:
    series = {"BTCUSDT": FakeSeries.from_frame(candles, "1m")}
    balances = {"USDT": 10_000.0, "BTC": 0.5}
    with FakeExchange(series, now_ms=clock, balances=balances) as server:
        server.state.timeout_s = 0.8
        yield server


def _broker(fake: FakeExchange, **config: Any) -> CcxtBroker:
    live = LiveConfig(api_url=fake.url, timeout_ms=400, **config)
    credentials = Credentials(fake.keys.api_key, fake.keys.api_secret)
    return make_live_broker(live, [BTC], credentials, backoff=FAST)


@pytest.fixture
async def broker(fake: FakeExchange) -> AsyncIterator[CcxtBroker]:
    live = _broker(fake)
    await live.start()
    yield live
    await live.close()


def _close(candles: pl.DataFrame, ts: int) -> float:
    return float(candles.filter(pl.col("timestamp") == ts)["close"][0])


def _order(ts: int, side: str, quantity: float, seq: int = 0, **kwargs: Any) -> Order:
    return Order(order_id(BTC, ts, seq), BTC, ts, side, quantity, **kwargs)  # type: ignore[arg-type]


def _events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [event for event in logs if event["event"] == name]


# -- client ids ------------------------------------------------------------------------------


def test_client_order_id_is_deterministic_binance_safe_and_bounded() -> None:
    cid = client_order_id("BTC/USDT-1700000000000-0")
    assert cid == "titan-BTC_USDT-1700000000000-0"
    long_ids = [f"1000SATSXYZ/USDT:USDT-1700000000000-{n}" for n in (1, 2)]
    hashed = [client_order_id(i) for i in long_ids]
    assert all(len(h) <= 36 and h.startswith("titan-") for h in hashed)
    assert hashed[0] != hashed[1] and hashed[0] == client_order_id(long_ids[0])


# -- market orders ---------------------------------------------------------------------------


async def test_market_buy_reads_back_fills_with_fee_in_quote(
    broker: CcxtBroker, fake: FakeExchange, candles: pl.DataFrame, t0: int
) -> None:
    """Fills at the close of the candle at now; the base commission becomes a quote fee."""
    broker.set_prices({BTC: _close(candles, t0)}, t0)
    with capture_logs() as logs:
        [fill] = await broker.submit(_order(t0, "buy", 0.0123456789))
    price = _close(candles, t0 + MINUTE)
    commission = float(f"{0.012345 * 0.001:.8f}")  # Binance reports 8 decimals
    assert fill.order_id == order_id(BTC, t0, 0) and fill.side == "buy"
    assert fill.price == pytest.approx(price)
    assert fill.quantity == pytest.approx(0.012345 - commission)  # rounded down, net of fee
    assert fill.fee == pytest.approx(commission * price)
    [order] = fake.account.orders.values()
    assert order.quantity == pytest.approx(0.012345)
    assert order.client_id == client_order_id(fill.order_id)
    assert fake.account.balance("BTC")[0] == pytest.approx(0.5 + fill.quantity)
    cash = 10_000.0 - fill.quantity * fill.price - fill.fee  # what the portfolio books
    assert fake.account.balance("USDT")[0] == pytest.approx(cash)
    assert [e["event"] for e in logs] == ["order_submitted", "order_filled"]
    assert _events(logs, "order_submitted")[0]["client_id"] == order.client_id


async def test_market_sell_pays_its_fee_in_quote(
    broker: CcxtBroker, candles: pl.DataFrame, t0: int
) -> None:
    broker.set_prices({BTC: _close(candles, t0)}, t0)
    [fill] = await broker.submit(_order(t0, "sell", 0.1))
    price = _close(candles, t0 + MINUTE)
    assert fill.side == "sell" and fill.quantity == pytest.approx(0.1)
    assert fill.fee == pytest.approx(0.1 * price * 0.001)


async def test_order_below_min_notional_is_refused_without_a_request(
    broker: CcxtBroker, fake: FakeExchange, candles: pl.DataFrame, t0: int
) -> None:
    broker.set_prices({BTC: _close(candles, t0)}, t0)
    fake.requests.clear()
    with capture_logs() as logs:
        assert await broker.submit(_order(t0, "buy", 0.00001)) == []
    [event] = _events(logs, "order_rejected")
    assert event["reason"] == "below_min_notional" and event["order_id"] == order_id(BTC, t0, 0)
    assert "POST /api/v3/order" not in fake.requests


async def test_the_hard_order_cap_refuses_oversized_orders_but_not_flattening(
    fake: FakeExchange, candles: pl.DataFrame, t0: int
) -> None:
    """A last line of defence behind the risk limits (a sizing bug cannot send 10x)."""
    live = LiveConfig(api_url=fake.url, timeout_ms=400)
    credentials = Credentials(fake.keys.api_key, fake.keys.api_secret)
    broker = make_live_broker(live, [BTC], credentials, max_order_notional=1_000.0, backoff=FAST)
    try:
        price = _close(candles, t0)
        broker.set_prices({BTC: price}, t0)
        with capture_logs() as logs:
            assert await broker.submit(_order(t0, "buy", 2_000.0 / price)) == []
        assert _events(logs, "order_rejected")[0]["reason"] == "above_max_order_notional"
        assert await broker.submit(_order(t0, "buy", 999.0 / price, seq=1))
        assert await broker.submit(_order(t0, "sell", 0.05, seq=2, reason="flatten"))
        assert len(fake.account.orders) == 2
    finally:
        await broker.close()


async def test_exchange_rejection_is_an_event_not_an_exception(
    broker: CcxtBroker, fake: FakeExchange, candles: pl.DataFrame, t0: int
) -> None:
    """Insufficient funds: `order_rejected` with the error type, no fill, nothing raised."""
    broker.set_prices({BTC: _close(candles, t0)}, t0)
    with capture_logs() as logs:
        assert await broker.submit(_order(t0, "buy", 1.0)) == []  # ~94k > 10k USDT
    [event] = _events(logs, "order_rejected")
    assert event["reason"] == "exchange" and event["error"].startswith("InsufficientFunds")
    assert fake.account.orders == {}


# -- limit orders ----------------------------------------------------------------------------


async def test_limit_order_rests_then_fills_on_a_later_candle(
    broker: CcxtBroker, fake: FakeExchange, candles: pl.DataFrame, t0: int, clock: Clock
) -> None:
    now_close = _close(candles, t0 + MINUTE)
    limit = round(now_close * 0.999, 2)
    broker.set_prices({BTC: _close(candles, t0)}, t0)
    assert await broker.submit(_order(t0, "buy", 0.01, type="limit", limit_price=limit)) == []
    assert len(fake.account.open_orders()) == 1 and broker.watched == 1
    assert fake.account.balance("USDT")[1] == pytest.approx(0.01 * limit)  # locked
    later = candles.filter((pl.col("timestamp") > t0 + MINUTE) & (pl.col("low") <= limit))
    clock.now = int(later["timestamp"][0]) + 1_000
    [fill] = await broker.poll_fills()
    assert fill.price == pytest.approx(limit) and fill.liquidity == "maker"
    assert fill.quantity == pytest.approx(0.01 * (1 - 0.001))
    assert broker.watched == 0 and fake.account.open_orders() == []
    assert await broker.poll_fills() == []  # nothing booked twice


async def test_configured_limit_orders_sit_offset_from_the_reference(fake: FakeExchange) -> None:
    broker = _broker(fake, order_type="limit", limit_offset_bps=50.0)
    try:
        ts = int(fake.state.series["BTCUSDT"].data[2000, 0])
        broker.set_prices({BTC: 50_000.0}, ts)
        await broker.submit(_order(ts, "buy", 0.01))
        await broker.submit(_order(ts, "sell", 0.01, seq=1))
        buy, sell = sorted(fake.account.orders.values(), key=lambda o: o.order_id)
        assert buy.type == "LIMIT" and buy.price == pytest.approx(50_000 * 0.995)
        assert sell.price == pytest.approx(50_000 * 1.005)
        assert buy.status == "CANCELED"  # a new order for the symbol replaces the resting one
        flatten = await broker.submit(_order(ts, "sell", 0.01, seq=2, reason="flatten"))
        assert len(flatten) == 1 and fake.account.orders[3].type == "MARKET"
    finally:
        await broker.close()


async def test_partial_fills_then_cancel_all_books_the_filled_part(
    broker: CcxtBroker, fake: FakeExchange, candles: pl.DataFrame, t0: int, clock: Clock
) -> None:
    fake.account.limit_fill_fraction = 0.4
    limit = round(_close(candles, t0 + MINUTE) * 0.999, 2)
    broker.set_prices({BTC: _close(candles, t0)}, t0)
    await broker.submit(_order(t0, "buy", 0.01, type="limit", limit_price=limit))
    crossing = candles.filter((pl.col("timestamp") > t0 + MINUTE) & (pl.col("low") <= limit))
    clock.now = int(crossing["timestamp"][0]) + 1_000
    [first] = await broker.poll_fills()
    assert first.quantity == pytest.approx(0.004 * 0.999)
    with capture_logs() as logs:
        assert await broker.cancel_all() == 1
    assert _events(logs, "orders_cancelled")[0]["count"] == 1
    assert fake.account.open_orders() == [] and fake.account.balance("USDT")[1] == pytest.approx(0)
    assert await broker.poll_fills() == []  # the filled part was booked once


async def test_cancel_all_cancels_external_orders_too(
    broker: CcxtBroker, fake: FakeExchange, t0: int
) -> None:
    external = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.1"}
    with fake.account_lock:
        fake.account.new_order({**external, "price": "200000", "timeInForce": "GTC"}, t0)
    assert await broker.cancel_all() == 1
    assert await broker.cancel_all() == 0 and fake.account.open_orders() == []


# -- idempotency and retries -----------------------------------------------------------------


@pytest.mark.parametrize("fault", ["timeout_after", "500_after", "timeout", "503", "429"])
async def test_a_retried_submit_never_places_the_order_twice(
    fault: str, broker: CcxtBroker, fake: FakeExchange, candles: pl.DataFrame, t0: int
) -> None:
    """Whether the lost request reached the exchange or not, exactly one order exists."""
    broker.set_prices({BTC: _close(candles, t0)}, t0)
    fake.inject(fault, path_prefix="/api/v3/order")
    with capture_logs() as logs:
        [fill] = await broker.submit(_order(t0, "buy", 0.01))
    assert len(fake.account.orders) == 1 and fill.quantity == pytest.approx(0.00999)
    assert fake.requests.count("POST /api/v3/order") == (1 if fault.endswith("after") else 2)
    recovered = _events(logs, "order_recovered")
    assert len(recovered) == (1 if fault.endswith("after") else 0)


async def test_a_duplicate_client_id_recovers_the_open_order(
    broker: CcxtBroker, fake: FakeExchange, t0: int
) -> None:
    order = _order(t0, "buy", 0.01, type="limit", limit_price=1_000.0)
    broker.set_prices({BTC: 90_000.0}, t0)
    await broker.submit(order)
    broker._watches.clear()  # as after a restart that forgot the resting order
    with capture_logs() as logs:
        assert await broker.submit(order) == []
    assert len(fake.account.orders) == 1 and _events(logs, "order_recovered")


async def test_exhausted_retries_leave_the_order_watched_as_unknown(
    broker: CcxtBroker, fake: FakeExchange, t0: int
) -> None:
    broker.set_prices({BTC: 90_000.0}, t0)
    fake.inject("503", count=FAST.max_attempts, path_prefix="/api/v3/order")
    with capture_logs() as logs:
        assert await broker.submit(_order(t0, "buy", 0.01)) == []
    assert _events(logs, "order_unknown") and broker.watched == 1
    with capture_logs() as logs:
        assert await broker.poll_fills() == []  # it never reached the exchange
    assert _events(logs, "order_not_found") and broker.watched == 0


async def test_authentication_failures_are_rejections_and_wrapped_query_errors(
    fake: FakeExchange, t0: int
) -> None:
    live = LiveConfig(api_url=fake.url, timeout_ms=400)
    wrong = Credentials(fake.keys.api_key, "not-the-secret-at-all")
    broker = make_live_broker(live, [BTC], wrong, backoff=FAST)
    try:
        broker.set_prices({BTC: 90_000.0}, t0)
        with capture_logs() as logs:
            assert await broker.submit(_order(t0, "buy", 0.01)) == []
        assert _events(logs, "order_rejected")[0]["error"].startswith("AuthenticationError")
        with pytest.raises(LiveBrokerError, match="AuthenticationError") as raised:
            await broker.fetch_balances()
        assert raised.value.__context__ is None and raised.value.__cause__ is None
    finally:
        await broker.close()


async def test_balances_and_open_orders_are_read_back(
    broker: CcxtBroker, fake: FakeExchange, t0: int
) -> None:
    broker.set_prices({BTC: 90_000.0}, t0)
    await broker.submit(_order(t0, "sell", 0.2, type="limit", limit_price=500_000.0))
    balances = await broker.fetch_balances()
    assert balances["BTC"].free == pytest.approx(0.3) and balances["BTC"].used == pytest.approx(0.2)
    assert balances["USDT"].total == pytest.approx(10_000.0)
    [order] = await broker.fetch_open_orders()
    assert (order.side, order.amount, order.price, order.status) == ("sell", 0.2, 500_000.0, "open")
    assert order.client_id == client_order_id(order_id(BTC, t0, 0))


# -- the order journal -----------------------------------------------------------------------


def _statuses(ledger: Ledger) -> dict[str, tuple[str, str | None]]:
    return {row["order_id"]: (row["status"], row["exchange_id"]) for row in ledger.orders()}


async def test_every_submitted_order_is_journalled_with_its_latest_status(
    broker: CcxtBroker, fake: FakeExchange, candles: pl.DataFrame, t0: int, tmp_path: Path
) -> None:
    """Resting: `open` with its exchange id; filled: `closed`; cancelled by a kill: `canceled`;
    refused by the exchange: `rejected`."""
    broker.journal = ledger = Ledger(tmp_path / "ledger.db")
    broker.set_prices({BTC: _close(candles, t0)}, t0)
    resting = _order(t0, "buy", 0.01, type="limit", limit_price=1_000.0)
    await broker.submit(resting)
    [placed] = fake.account.orders.values()
    assert _statuses(ledger) == {resting.id: ("open", str(placed.order_id))}
    [row] = ledger.orders()
    assert row["client_id"] == placed.client_id and row["price"] == 1_000.0
    await broker.cancel_all()
    await broker.submit(_order(t0, "sell", 0.1, seq=1))  # a market order: filled at once
    await broker.submit(_order(t0, "sell", 50.0, seq=2))  # more BTC than the account has
    assert [status for status, _ in _statuses(ledger).values()] == [
        "canceled",
        "closed",
        "rejected",
    ]
    assert ledger.orders(unfinished=True) == []


async def test_an_order_whose_fate_is_unknown_stays_unfinished_in_the_journal(
    broker: CcxtBroker, fake: FakeExchange, t0: int, tmp_path: Path
) -> None:
    broker.journal = ledger = Ledger(tmp_path / "ledger.db")
    broker.set_prices({BTC: 90_000.0}, t0)
    fake.inject("503", count=FAST.max_attempts, path_prefix="/api/v3/order")
    await broker.submit(_order(t0, "buy", 0.01))
    assert [row["status"] for row in ledger.orders(unfinished=True)] == ["unknown"]
