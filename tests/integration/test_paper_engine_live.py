"""The real engine as a paper daemon on the live stand-ins (fake Binance REST + websocket):
thousands of simulated minutes with random faults and a restart in the middle.

Afterwards the stored candles equal the source, every decision was made on a closed
candle and once only, and the daemon never crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.integration.engine_setup import SMALL
from tests.unit.feeds.rig import MINUTE, SYMBOLS, StandIns, series_id, stand_ins
from titan.config import TitanConfig, load_config
from titan.data.feeds import build_live_feed
from titan.engine.compose import build_engine
from titan.engine.engine import Engine
from titan.engine.ledger import EquityRow

pytestmark = pytest.mark.slow
MINUTES = 1600
WS_FAULTS = ("abrupt_close", "close_1001", "server_shutdown", "duplicate", "malformed")
REST_FAULTS = ("429", "500", "malformed", "timeout")


class Watch:
    """An engine observer recording when each decision was made on the feed's clock."""

    def __init__(self, rig: StandIns) -> None:
        self.rig = rig
        self.decided: list[tuple[str, int, int]] = []  # (symbol, candle ts, clock at decision)
        self.last_interval = -1
        self.arrived = asyncio.Event()

    def on_decisions(self, ts: int, decisions: Sequence[Any]) -> None:
        now = self.rig.clock.now_ms()
        self.decided += [(d.symbol, d.ts, now) for d in decisions]

    def on_interval(self, ts: int, equity: EquityRow) -> None:
        self.last_interval = ts
        self.arrived.set()

    def on_fills(self, fills: Sequence[Any]) -> None: ...

    def on_stats(self, ts: int, stats: Any) -> None: ...

    def on_status(self, status: str) -> None: ...

    async def wait_for(self, ts: int, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.last_interval < ts:
                    self.arrived.clear()
                    await self.arrived.wait()
                return True
        return False


def paper_config(rig: StandIns, state: Path) -> TitanConfig:
    overrides = {k: v for k, v in SMALL.items() if not k.startswith(("feed.", "data."))}
    overrides |= {
        "mode": "paper",
        "feed.kind": "websocket",
        "data.exchange": "binance",
        "data.symbols": '["BTC/USDT", "ETH/USDT"]',
        "data.store": str(rig.store.root),
        "runtime.state_dir": str(state),
        "engine.checkpoint_every": "120",
        "feed.live.ws_url": rig.ws.url,
        "feed.live.api_url": rig.rest.url,
        "feed.live.warmup_candles": "600",
        "feed.live.request_timeout_s": "0.3",
        "feed.live.ping_interval_s": "0.1",
        "feed.live.ping_timeout_s": "0.5",
        "feed.live.close_timeout_s": "0.3",
        "feed.live.backoff_base_s": "0.005",
        "feed.live.backoff_cap_s": "0.05",
        "feed.live.persist_every": "100",
        "feed.live.assemble_grace_s": "150",
    }
    return load_config(overrides=overrides, env={})


def engine_on(rig: StandIns, state: Path) -> tuple[Engine, Watch]:
    config = paper_config(rig, state)
    engine = build_engine(config)
    live = config.feed.live
    # The same composition, with the feed on the stand-ins' manual clock.
    engine.parts.feed = build_live_feed(
        live, "websocket", "binance", SYMBOLS, "1m", rig.clock, rig.store
    )
    watch = Watch(rig)
    engine.observers.add(watch)
    return engine, watch


async def run_daemon_for(rig: StandIns, state: Path, minutes: int, rng: random.Random) -> Watch:
    engine, watch = engine_on(rig, state)
    task = asyncio.create_task(engine.run())
    assert await watch.wait_for(rig.clock.now_ms() // MINUTE * MINUTE - 2 * MINUTE, 60)
    for _ in range(minutes):
        if rng.random() < 0.03:
            rig.ws.inject(rng.choice(WS_FAULTS))
        if rng.random() < 0.02:
            rig.rest.inject(rng.choice(REST_FAULTS), path_prefix="/api/v3/klines")
        close = (rig.clock.now_ms() // MINUTE + 1) * MINUTE
        await rig.ws.advance_to(close)
        await watch.wait_for(close - MINUTE, 1.0)
        assert not task.done(), "the daemon stopped or crashed"
    assert await watch.wait_for(rig.clock.now_ms() // MINUTE * MINUTE - MINUTE, 10)
    engine.request_stop()
    await asyncio.wait_for(task, 30)
    engine.ledger.close()
    return watch


async def test_paper_daemon_on_live_stand_ins_with_faults_and_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with stand_ins(tmp_path, rows=MINUTES + 800, start_index=700, seed=9) as rig:
        rig.rest.state.timeout_s = 0.5
        first = rig.clock.now_ms() // MINUTE * MINUTE - 600 * MINUTE
        rng = random.Random(11)
        before = await run_daemon_for(rig, state, MINUTES // 2, rng)
        await rig.ws.advance(5 * MINUTE)  # down for five minutes
        after = await run_daemon_for(rig, state, MINUTES // 2, rng)
        end = rig.clock.now_ms() // MINUTE * MINUTE

    for symbol in SYMBOLS:  # the stored record is the source: no gap, no duplicate
        assert rig.store.read(series_id(symbol)).equals(rig.expected(symbol, first, end))
    decided = before.decided + after.decided
    assert decided and all(ts + MINUTE <= at for _, ts, at in decided)  # closed candles only
    predictions = _predictions(state)
    assert predictions.height == predictions.unique().height  # each decision once
    stamps = sorted(set(predictions["ts"].to_list()))
    assert stamps == list(range(stamps[0], stamps[-1] + MINUTE, MINUTE))  # none missed


def _predictions(state: Path) -> pl.DataFrame:
    from titan.engine.ledger import Ledger

    ledger = Ledger(state / "ledger.db")
    try:
        return ledger.frame("predictions").select("symbol", "ts")
    finally:
        ledger.close()
