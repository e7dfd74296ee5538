"""Test rig for live feeds: recorded candles served by the fake REST and websocket
servers on 127.0.0.1, a manual clock, and a consumer that checks what the engine relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import polars as pl

from titan.clock import Clock
from titan.config.live_feed import LiveFeedConfig
from titan.data.exchange import make_exchange
from titan.data.store import CandleStore, SeriesId
from titan.engine.feed import Interval
from titan.testing.fake_exchange import FakeExchange, FakeSeries
from titan.testing.fake_ws import FakeKlineServer, ManualClock

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_DIR = REPO_ROOT / "backtests" / "data"
MINUTE = 60_000
SYMBOLS = ("BTC/USDT", "ETH/USDT")
IDS = {"BTC/USDT": "BTCUSDT", "ETH/USDT": "ETHUSDT"}


def load_source(rows: int) -> dict[str, pl.DataFrame]:
    """The first `rows` recorded 1m candles of BTC and ETH, keyed by config symbol."""
    return {
        symbol: pl.read_parquet(SAMPLE_DIR / f"binanceusdm_{market_id}_1m.parquet").head(rows)
        for symbol, market_id in IDS.items()
    }


def fast_config(**overrides: Any) -> LiveFeedConfig:
    """Feed settings for tests: tiny network timers; candle timing stays realistic."""
    values: dict[str, Any] = {
        "poll_delay_s": 2.0,
        "poll_retry_s": 2.0,
        "warmup_candles": 30,
        "assemble_grace_s": 150.0,
        "stale_after_s": 90.0,
        "ping_interval_s": 0.1,
        "ping_timeout_s": 0.5,
        "open_timeout_s": 2.0,
        "close_timeout_s": 0.3,
        "backoff_base_s": 0.005,
        "backoff_cap_s": 0.05,
        "rest_max_attempts": 8,
        "persist_every": 20,
        "page_limit": 100,
        "max_pending_intervals": 400,
        "seed": 7,
    }
    values.update(overrides)
    return LiveFeedConfig(**values)


def exchange_factory(url: str, **params: Any) -> Callable[[], Any]:
    params = {"timeout": 300, "rateLimit": 1, **params}
    return lambda: make_exchange(
        "binance", url, options={"fetchMarkets": {"types": ["spot"]}}, **params
    )


def series_id(symbol: str) -> SeriesId:
    return SeriesId("binance", symbol, "1m")


class Collector:
    """Consumes a feed like the engine does and records every rule it sees broken."""

    def __init__(self, feed: AsyncIterator[Interval], clock: Clock, step_ms: int = MINUTE):
        self.feed = cast(AsyncGenerator[Interval, None], feed)
        self.clock = clock
        self.step_ms = step_ms
        self.intervals: list[Interval] = []
        self.violations: list[str] = []
        self._arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Collector:
        self.task = asyncio.ensure_future(self._consume())
        return self

    async def _consume(self) -> None:
        async for interval in self.feed:
            self._check(interval)
            self.intervals.append(interval)
            self._arrived.set()

    def _check(self, interval: Interval) -> None:
        now = self.clock.now_ms()
        if self.intervals and interval.ts <= self.intervals[-1].ts:
            self.violations.append(f"out of order or duplicate interval {interval.ts}")
        symbols = [candle.symbol for candle in interval.candles]
        if len(set(symbols)) != len(symbols) or not symbols:
            self.violations.append(f"bad symbol set {symbols} at {interval.ts}")
        for candle in interval.candles:
            if candle.ts != interval.ts or candle.ts + self.step_ms > now:
                self.violations.append(f"not closed or misplaced: {candle} at {now}")

    @property
    def last_ts(self) -> int | None:
        return self.intervals[-1].ts if self.intervals else None

    async def wait_for(self, ts: int, timeout: float = 5.0) -> bool:
        """True once an interval at or after `ts` was consumed; False after `timeout` s."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.last_ts is None or self.last_ts < ts:
                    self._failed()
                    self._arrived.clear()
                    await self._arrived.wait()
                return True
        self._failed()
        return False

    def _failed(self) -> None:
        if self.task is not None and self.task.done() and self.task.exception() is not None:
            raise AssertionError("the feed crashed") from self.task.exception()

    async def stop(self) -> None:
        if self.task is not None:
            self._failed()
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.feed.aclose()

    def frame(self, symbol: str) -> pl.DataFrame:
        """The candles of `symbol` the consumer saw, in the store's frame layout."""
        rows = [
            (c.ts, c.open, c.high, c.low, c.close, c.volume)
            for interval in self.intervals
            for c in interval.candles
            if c.symbol == symbol
        ]
        schema = ["timestamp", "open", "high", "low", "close", "volume"]
        return pl.DataFrame(rows, schema=schema, orient="row")


@dataclass
class StandIns:
    """Fake REST + websocket servers over the same recorded candles and manual clock."""

    source: dict[str, pl.DataFrame]
    clock: ManualClock
    rest: FakeExchange
    ws: FakeKlineServer
    store: CandleStore
    extra: dict[str, Any] = field(default_factory=dict)

    def expected(self, symbol: str, start: int, end: int) -> pl.DataFrame:
        """Source candles of `symbol` with start <= open time < end."""
        frame = self.source[symbol]
        return frame.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < end))

    async def run_minutes(self, collector: Collector, minutes: int, timeout: float = 3.0) -> int:
        """Advance `minutes` candle closes, waiting for each interval; returns misses."""
        misses = 0
        for _ in range(minutes):
            close = (self.clock.now_ms() // MINUTE + 1) * MINUTE
            await self.ws.advance_to(close)
            misses += not await collector.wait_for(close - MINUTE, timeout)
        return misses


@contextlib.asynccontextmanager
async def stand_ins(
    tmp_path: Path,
    rows: int = 400,
    start_index: int = 100,
    *,
    seed: int = 0,
    balances: dict[str, float] | None = None,
) -> AsyncIterator[StandIns]:
    """Servers over `rows` recorded candles; the clock starts 30 s into candle `start_index`."""
    source = load_source(rows)
    series = {IDS[s]: FakeSeries.from_frame(frame, "1m") for s, frame in source.items()}
    start = int(source["BTC/USDT"]["timestamp"][start_index]) + 30_000
    clock = ManualClock(start)
    with FakeExchange(series, now_ms=clock.now_ms, balances=balances) as rest:
        rest.state.timeout_s = 0.5
        async with FakeKlineServer(series, clock, seed=seed) as ws:
            yield StandIns(source, clock, rest, ws, CandleStore(tmp_path / "store"))
