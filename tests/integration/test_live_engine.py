"""The real engine in live mode on the stand-ins: real (fake-exchange) orders behind the
guard, reconciliation on start, fills in the ledger, and the kill-switch file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_paper_engine_live import Watch, paper_config
from tests.unit.feeds.rig import MINUTE, SYMBOLS, StandIns, stand_ins
from titan.config import ConfigError, TitanConfig
from titan.data.feeds import build_live_feed
from titan.engine.compose import build_engine
from titan.engine.engine import Engine
from titan.testing.fake_trading import FakeOrder

pytestmark = pytest.mark.slow


def live_config(rig: StandIns, state: Path, **live_options: Any) -> TitanConfig:
    base = paper_config(rig, state)
    options = {"api_url": rig.rest.url, "timeout_ms": 400, **live_options}
    live = base.live.model_copy(update=options)
    trading = base.trading.model_copy(update={"min_edge": 0.005, "starting_cash": 10_000.0})
    return base.model_copy(update={"mode": "live", "live": live, "trading": trading})


def live_engine(rig: StandIns, state: Path, **live_options: Any) -> tuple[Engine, Watch]:
    engine = build_engine(live_config(rig, state, **live_options), confirm_live=True)
    config = engine.config.feed.live
    engine.parts.feed = build_live_feed(
        config, "websocket", "binance", SYMBOLS, "1m", rig.clock, rig.store
    )
    watch = Watch(rig)
    engine.observers.add(watch)
    return engine, watch


async def advance(rig: StandIns, watch: Watch, minutes: int) -> None:
    for _ in range(minutes):
        close = (rig.clock.now_ms() // MINUTE + 1) * MINUTE
        await rig.ws.advance_to(close)
        await watch.wait_for(close - MINUTE, 2.0)


def orders_on_exchange(rig: StandIns) -> int:
    return sum(1 for line in rig.rest.requests if line == "POST /api/v3/order")


async def advance_until_resting(rig: StandIns, watch: Watch, most: int) -> list[FakeOrder]:
    """Advance candle by candle until an order rests on the exchange (at most `most`)."""
    for _ in range(most):
        await advance(rig, watch, 1)
        with rig.rest.account_lock:
            resting = rig.rest.account.open_orders()
        if resting:
            return resting
    return []


async def start_live(
    rig: StandIns, state: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any
) -> tuple[Engine, Watch, asyncio.Task[Any]]:
    """The live engine on the stand-ins with the fake exchange's keys, running and caught
    up with the warm-up (engine, its interval watch, its task)."""
    monkeypatch.setenv("TITAN_API_KEY", rig.rest.keys.api_key)
    monkeypatch.setenv("TITAN_API_SECRET", rig.rest.keys.api_secret)
    engine, watch = live_engine(rig, state, **settings)
    task = asyncio.create_task(engine.run())
    assert await watch.wait_for(rig.clock.now_ms() // MINUTE * MINUTE - 2 * MINUTE, 60)
    return engine, watch, task


async def test_live_daemon_trades_on_the_exchange_until_the_kill_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    async with stand_ins(
        tmp_path, rows=1800, start_index=700, seed=2, balances={"USDT": 10_000.0}
    ) as rig:
        engine, watch, task = await start_live(rig, state, monkeypatch)
        await advance(rig, watch, 600)
        placed = orders_on_exchange(rig)
        fills = engine.ledger.frame("fills").height
        (state / "KILL").touch()
        await advance(rig, watch, 5)
        killed_at = orders_on_exchange(rig)
        await advance(rig, watch, 200)
        engine.request_stop()
        await asyncio.wait_for(task, 30)
        after_kill = orders_on_exchange(rig) - killed_at
        exchange_trades = len(rig.rest.account.trades)

    assert placed > 0 and fills > 0  # decisions became real orders, fills reached the ledger
    assert engine.trader.killed and after_kill == 0  # the kill switch stopped trading
    assert engine.ledger.frame("fills").height == exchange_trades  # ledger == exchange
    assert "GET /api/v3/openOrders" in rig.rest.requests  # reconciled on start


async def test_live_mode_needs_the_explicit_confirmation(tmp_path: Path) -> None:
    async with stand_ins(tmp_path, seed=1) as rig:
        with pytest.raises(ConfigError, match="confirm"):
            build_engine(live_config(rig, tmp_path / "state"), confirm_live=False)


async def test_the_kill_file_cancels_a_resting_limit_order_on_the_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live limit order rests (2% off the market); the KILL file makes the engine cancel
    it on the exchange (cancel_all: DELETE openOrders) before the next interval can trade,
    and no order follows, even once trading is resumed after the kill."""
    state = tmp_path / "state"
    async with stand_ins(
        tmp_path, rows=1800, start_index=700, seed=3, balances={"USDT": 10_000.0}
    ) as rig:
        engine, watch, task = await start_live(
            rig, state, monkeypatch, order_type="limit", limit_offset_bps=200.0
        )
        resting = await advance_until_resting(rig, watch, 900)
        assert resting and all(order.type == "LIMIT" for order in resting)
        before_kill = len(rig.rest.requests)
        (state / "KILL").touch()
        await advance(rig, watch, 2)  # the file is seen before the next interval trades
        kill_requests = rig.rest.requests[before_kill:]
        engine.resume_trading()  # the kill switch holds regardless
        after_kill = len(rig.rest.requests)
        await advance(rig, watch, 60)
        engine.request_stop()
        await asyncio.wait_for(task, 30)
        later_requests = rig.rest.requests[after_kill:]

    assert engine.trader.killed
    assert "DELETE /api/v3/openOrders" in kill_requests  # cancelled by the kill switch
    assert all(order.status == "CANCELED" for order in resting)
    assert rig.rest.account.open_orders() == []
    assert "POST /api/v3/order" not in kill_requests + later_requests
