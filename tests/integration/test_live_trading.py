"""The live order path end to end: Trader (sizing, risk limits) -> CcxtBroker -> the fake
Binance spot server on 127.0.0.1 (real recorded candles) -> fills -> Portfolio.

Time: the Trader decides at the close of candle `ts`, so the server's clock is then in the
next candle, whose close is where market orders fill.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import polars as pl
import pytest
from structlog.testing import capture_logs

from titan.config import load_config
from titan.config.live import LiveConfig
from titan.config.trading import TradingConfig
from titan.data.exchange import Backoff
from titan.engine.compose import _reconcile_hook
from titan.engine.ledger import ABSENT, Ledger
from titan.engine.records import EngineParts
from titan.ops.logging import configure_logging
from titan.ops.secrets import Credentials, load_api_credentials
from titan.testing.fake_exchange import FakeExchange, FakeSeries
from titan.trading.guard import LiveTradingRefused, require_live_confirmation
from titan.trading.live_broker import CcxtBroker, make_live_broker
from titan.trading.live_orders import LiveBrokerError, client_order_id
from titan.trading.reconcile import reconcile_on_start
from titan.trading.risk import RiskReason
from titan.trading.trader import Trader

MINUTE = 60_000
BTC, ETH = "BTC/USDT", "ETH/USDT"
FAST = Backoff(base_s=0.005, cap_s=0.02, max_attempts=4)
FIRST, LAST = 24_000, 25_000  # sample rows used; BTC falls ~1.9% over rows 24575-24595
DROP_START = 24_575 - FIRST


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def frames(sample_dir: Path) -> dict[str, pl.DataFrame]:
    btc = pl.read_parquet(sample_dir / "binanceusdm_BTCUSDT_1m.parquet").slice(FIRST, LAST - FIRST)
    eth = pl.read_parquet(sample_dir / "binanceusdm_ETHUSDT_1m.parquet")
    eth = eth.filter(pl.col("timestamp").is_in(btc["timestamp"].implode()))
    return {BTC: btc, ETH: eth}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _server(frames: dict[str, pl.DataFrame], clock: Clock, **kwargs: Any) -> FakeExchange:
    series = {s.replace("/", ""): FakeSeries.from_frame(f, "1m") for s, f in frames.items()}
    server = FakeExchange(series, now_ms=clock, balances={"USDT": 10_000.0}, **kwargs)
    server.state.timeout_s = 0.8
    return server


@pytest.fixture
def fake(frames: dict[str, pl.DataFrame], clock: Clock) -> Iterator[FakeExchange]:
    with _server(frames, clock) as server:
        yield server


def _credentials(fake: FakeExchange) -> Credentials:
    return Credentials(fake.keys.api_key, fake.keys.api_secret)


async def _broker(fake: FakeExchange, **config: Any) -> CcxtBroker:
    live = LiveConfig(api_url=fake.url, timeout_ms=400, **config)
    broker = make_live_broker(live, [BTC, ETH], _credentials(fake), backoff=FAST)
    await broker.start()
    return broker


@pytest.fixture
async def broker(fake: FakeExchange) -> AsyncIterator[CcxtBroker]:
    live = await _broker(fake)
    yield live
    await live.close()


def _trader(broker: CcxtBroker, **limits: Any) -> Trader:
    config = TradingConfig(starting_cash=10_000.0, fee_bps=10.0, **limits)
    return Trader(config, broker, interval_ms=MINUTE)


class Session:
    """Drives the Trader like the engine does: one decision per closed candle."""

    def __init__(self, trader: Trader, frames: dict[str, pl.DataFrame], clock: Clock) -> None:
        self.trader, self.frames, self.clock = trader, frames, clock
        self.broker: CcxtBroker = trader.broker  # type: ignore[assignment]
        self.orders: list[Any] = []

    def ts(self, row: int) -> int:
        return int(self.frames[BTC]["timestamp"][row])

    async def decide(self, row: int, prob_up: float, symbol: str = BTC) -> list[Any]:
        ts = self.ts(row)
        self.clock.now = ts + MINUTE + 5_000
        await self.trader.poll()
        frame = self.frames[symbol]
        close = float(frame.filter(pl.col("timestamp") == ts)["close"][0])
        fills = await self.trader.on_forecast(symbol, ts, close, prob_up, 1.0)
        assert self.trader.last_report is not None
        self.orders += self.trader.last_report.orders
        return fills


def _posts(fake: FakeExchange) -> int:
    return fake.requests.count("POST /api/v3/order")


async def test_forecasts_trade_on_the_exchange_and_fills_reach_the_portfolio(
    broker: CcxtBroker, fake: FakeExchange, frames: dict[str, pl.DataFrame], clock: Clock
) -> None:
    session = Session(_trader(broker), frames, clock)
    for row, prob in [(10, 0.8), (11, 0.8), (12, 0.65), (13, 0.3), (14, 0.9)]:
        await session.decide(row, prob, BTC)
        await session.decide(row, 1.0 - prob, ETH)
    placed = {o.client_id for o in fake.account.orders.values()}
    assert placed == {client_order_id(o.id) for o in session.orders} and len(placed) >= 4
    book = session.trader.portfolio
    for asset, symbol in (("BTC", BTC), ("ETH", ETH)):
        assert fake.account.balance(asset)[0] == pytest.approx(book.quantity(symbol), abs=1e-7)
    assert fake.account.balance("USDT")[0] == pytest.approx(book.cash, abs=1e-4)
    assert book.fees_paid > 0 and book.realized_pnl != 0.0
    # Selling the ETH bought (net of its base commission, 8 decimals) at the lot step (6)
    # leaves unsellable dust: the portfolio shows it exactly as the exchange holds it.
    assert 0 <= book.quantity(ETH) < 1e-6
    known = [o.id for o in session.orders]
    marks = session.trader.marks
    result = await reconcile_on_start(broker, book, known, LiveConfig(), prices=marks, ts=0)
    assert result.ok  # ledger and exchange agree to the dust


async def test_max_order_and_position_notional_clip_exchange_orders(
    broker: CcxtBroker, fake: FakeExchange, frames: dict[str, pl.DataFrame], clock: Clock
) -> None:
    trader = _trader(broker, max_order_notional=400.0, max_position_notional=1_000.0)
    session = Session(trader, frames, clock)
    reasons: set[RiskReason] = set()
    for row in range(20, 26):
        await session.decide(row, 0.95)  # wants half the equity: 5000 USDT
        reasons |= set(trader.last_report.reasons)  # type: ignore[union-attr]
    assert {RiskReason.ORDER_LIMIT, RiskReason.POSITION_LIMIT} <= reasons
    placed = sorted(fake.account.orders.values(), key=lambda o: o.order_id)
    assert len(placed) == len(session.orders) >= 3  # 400 + 400 + the rest of the 1000 cap
    for exchange_order, order in zip(placed, session.orders, strict=True):
        reference = float(frames[BTC].filter(pl.col("timestamp") == order.ts)["close"][0])
        assert exchange_order.quantity * reference <= 400.0 * (1 + 1e-9)
        assert exchange_order.quantity <= order.quantity  # rounded down to the lot step
    position_value = trader.portfolio.quantity(BTC) * trader.marks[BTC]
    assert 900.0 < position_value <= 1_000.0 * 1.01  # the cap, at the latest mark


async def test_daily_loss_limit_blocks_new_risk(
    broker: CcxtBroker, fake: FakeExchange, frames: dict[str, pl.DataFrame], clock: Clock
) -> None:
    """BTC falls ~1.9% in 20 minutes: a half-equity long loses > 0.5%, then no more buys."""
    limits = {"max_order_notional": 6_000.0, "max_position_notional": 6_000.0}
    trader = _trader(broker, daily_loss_limit=0.005, **limits)
    session = Session(trader, frames, clock)
    await session.decide(DROP_START, 0.9)
    assert trader.portfolio.quantity(BTC) > 0
    halted_at = None
    for row in range(DROP_START + 1, DROP_START + 21):
        posts = _posts(fake)
        await session.decide(row, 0.9)
        if halted_at is not None:
            assert _posts(fake) == posts  # nothing new placed while halted
        elif trader.risk.halted:
            halted_at = row
            assert RiskReason.DAILY_LOSS_LIMIT in trader.last_report.reasons  # type: ignore[union-attr]
    assert halted_at is not None
    assert all(o.side == "BUY" for o in fake.account.orders.values())  # only the first entry
    assert len(fake.account.orders) <= halted_at - DROP_START


async def test_kill_switch_cancels_resting_orders_and_stops_trading(
    fake: FakeExchange, frames: dict[str, pl.DataFrame], clock: Clock
) -> None:
    broker = await _broker(fake, order_type="limit", limit_offset_bps=100.0)
    try:
        trader = _trader(broker)
        session = Session(trader, frames, clock)
        assert await session.decide(30, 0.9) == [] and await session.decide(30, 0.9, ETH) == []
        assert len(fake.account.open_orders()) == 2  # resting 1% below the market
        trader.kill()  # what the engine does on the kill file / MQTT command
        with capture_logs() as logs:
            assert await broker.cancel_all() == 2
        assert fake.account.open_orders() == [] and fake.account.balance("USDT")[1] == 0
        assert next(e for e in logs if e["event"] == "orders_cancelled")["count"] == 2
        posts = _posts(fake)
        for row in (31, 32, 33):
            assert await session.decide(row, 0.95) == []
            assert RiskReason.KILL_SWITCH in trader.last_report.reasons  # type: ignore[union-attr]
        assert _posts(fake) == posts
    finally:
        await broker.close()


async def test_reconciliation_detects_an_external_order_and_balance_drift(
    broker: CcxtBroker, fake: FakeExchange, frames: dict[str, pl.DataFrame], clock: Clock
) -> None:
    session = Session(_trader(broker), frames, clock)
    await session.decide(40, 0.8)
    held = session.trader.portfolio.quantity(BTC)
    with fake.account_lock:  # someone trades by hand and deposits ETH
        external = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.001"}
        fake.account.new_order({**external, "price": "500000", "timeInForce": "GTC"}, clock.now)
        fake.account.free["ETH"] = 2.0
    known = [o.id for o in session.orders]
    portfolio = session.trader.portfolio
    prices = {s: float(f["close"][40]) for s, f in frames.items()}  # the latest closes
    with capture_logs() as logs:
        result = await reconcile_on_start(
            broker, portfolio, known, LiveConfig(), prices=prices, ts=clock.now
        )
    kinds = sorted((m.kind, m.subject) for m in result.mismatches)
    assert kinds == [("position_drift", ETH), ("unknown_order", "2")]
    assert [e["kind"] for e in logs if e["event"] == "reconcile_mismatch"] == [
        "unknown_order",
        "position_drift",
    ]
    assert fake.account.open_orders() == []  # the unknown order was cancelled (default)
    assert portfolio.quantity(ETH) == 2.0 and portfolio.quantity(BTC) == pytest.approx(held)
    assert portfolio.positions[ETH].avg_price == prices[ETH]  # adopted at the latest close


@pytest.mark.parametrize("fault", ["timeout_after", "500_after", "timeout", "503"])
async def test_faults_during_submit_never_duplicate_an_order(
    fault: str,
    broker: CcxtBroker,
    fake: FakeExchange,
    frames: dict[str, pl.DataFrame],
    clock: Clock,
) -> None:
    session = Session(_trader(broker), frames, clock)
    fake.inject(fault, count=2, path_prefix="/api/v3/order")
    for row, prob in [(50, 0.9), (51, 0.2), (52, 0.9)]:
        await session.decide(row, prob)
    client_ids = [o.client_id for o in fake.account.orders.values()]
    assert len(client_ids) == len(set(client_ids)) == len(session.orders) == 3
    assert fake.account.balance("BTC")[0] == pytest.approx(
        session.trader.portfolio.quantity(BTC), abs=1e-7
    )


def test_the_guard_refuses_live_trading_without_both_opt_ins() -> None:
    config = load_config(env={})
    assert config.mode == "paper"  # the default
    with pytest.raises(LiveTradingRefused):
        require_live_confirmation(config.mode, True, {"TITAN_CONFIRM_LIVE": "yes"})
    with pytest.raises(LiveTradingRefused, match="--confirm-live"):
        require_live_confirmation("live", False, {})
    require_live_confirmation("live", False, {"TITAN_CONFIRM_LIVE": "yes"})


async def test_keys_never_reach_the_logs_or_exception_texts(
    frames: dict[str, pl.DataFrame], clock: Clock, tmp_path: Path
) -> None:
    """A hostile server echoes the key and signed parameters in its errors; nothing leaks."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    with _server(frames, clock, leaky_errors=True) as fake:
        key, secret = fake.keys.api_key, fake.keys.api_secret
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(f'api_key = "{key}"\napi_secret = "{secret}"\n')
        secrets_file.chmod(0o600)
        credentials = load_api_credentials({}, secrets_file)
        live = LiveConfig(api_url=fake.url, timeout_ms=400, secrets_file=secrets_file)
        texts = [repr(credentials), repr(live)]
        broker = make_live_broker(live, [BTC, ETH], credentials, backoff=FAST)
        session = Session(_trader(broker), frames, clock)
        await broker.start()
        await session.decide(60, 0.9)  # a real order
        fake.inject("503", count=FAST.max_attempts, path_prefix="/api/v3/order")
        await session.decide(61, 0.1)  # retries run out: order_unknown with the URL
        big = session.orders[0]
        await broker.submit(type(big)(big.id + "x", BTC, big.ts, "buy", 10.0))  # no funds
        await broker.close()
        wrong = Credentials(key, "a-wrong-secret-value")
        impostor = make_live_broker(live, [BTC], wrong, backoff=FAST)
        impostor.set_prices({BTC: 100_000.0}, big.ts)
        await impostor.submit(big)  # AuthenticationError, echoed key
        with pytest.raises(LiveBrokerError) as raised:
            await impostor.fetch_balances()
        texts.append(str(raised.value))
        await impostor.close()
    log_text = stream.getvalue()
    events = [line for line in log_text.splitlines() if line]
    assert any('"order_rejected"' in e and "AuthenticationError" in e for e in events)
    assert any('"order_unknown"' in e for e in events)
    assert any("InsufficientFunds" in e for e in events)
    for text in [log_text, *texts]:
        assert key not in text and secret not in text
        assert re.search(r"signature=[0-9a-f]{16}", text) is None


def _start_hook(broker: CcxtBroker, ledger: Ledger, clock: Clock) -> Callable[[], Any]:
    """The engine's live start-up hook over a Trader on `broker` and `ledger`."""
    parts = SimpleNamespace(
        ledger=ledger,
        trader=_trader(broker),
        config=SimpleNamespace(live=LiveConfig()),
        clock=SimpleNamespace(now_ms=lambda: clock.now),
    )
    return _reconcile_hook(cast(EngineParts, parts), broker)


async def test_a_restart_keeps_titans_own_resting_order_and_reports_a_foreign_one(
    fake: FakeExchange, frames: dict[str, pl.DataFrame], clock: Clock, tmp_path: Path
) -> None:
    """Titan's unfilled limit order is known from the ledger's order journal after a restart:
    resumed, not cancelled; an order placed by hand is still an `unknown_order` (cancelled);
    a journalled order whose answer was lost and that is not open on the exchange is marked
    absent (no longer one that may rest)."""
    ledger = Ledger(tmp_path / "ledger.db")
    first = await _broker(fake, order_type="limit", limit_offset_bps=100.0)
    await _start_hook(first, ledger, clock)()
    session = Session(_trader(first), frames, clock)
    assert await session.decide(30, 0.9) == []  # rests 1% below the market, no fill
    [own] = fake.account.open_orders()
    lost = {"client_id": "titan-lost", "order_id": "lost", "symbol": "ETH/USDT", "side": "buy"}
    ledger.record_order(
        {**lost, "type": "limit", "amount": 0.01, "price": 1.0, "status": "unknown", "ts": 0}
    )
    await first.close()
    ledger.close()
    with fake.account_lock:
        external = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01"}
        order = {**external, "price": "1000", "timeInForce": "GTC"}
        foreign = fake.account.new_order(order, clock.now)  # placed by hand, far from market
    restarted = Ledger(tmp_path / "ledger.db")
    second = await _broker(fake, order_type="limit", limit_offset_bps=100.0)
    try:
        with capture_logs() as logs:
            await _start_hook(second, restarted, clock)()
        mismatches = [e for e in logs if e["event"] == "reconcile_mismatch"]
        assert [(e["kind"], e["subject"]) for e in mismatches] == [
            ("unknown_order", str(foreign[1]["orderId"]))
        ]
        assert fake.account.open_orders() == [own] and own.status == "NEW"  # kept on the book
        assert second.watched == 1  # and watched for its fills
        assert [row["client_id"] for row in restarted.orders(unfinished=True)] == [own.client_id]
        assert {row["client_id"]: row["status"] for row in restarted.orders()}[
            "titan-lost"
        ] == ABSENT
    finally:
        await second.close()
