"""Live feeds against the local stand-ins (fake Binance REST + websocket on 127.0.0.1).

REST feed tests run on a `SimClock` (every poll jumps time to the next close);
websocket tests on the stand-ins' `ManualClock`, advanced a tick at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from structlog.testing import capture_logs

from tests.unit.feeds.rig import (
    IDS,
    MINUTE,
    SYMBOLS,
    Collector,
    StandIns,
    exchange_factory,
    fast_config,
    load_source,
    series_id,
    stand_ins,
)
from titan.clock import SimClock
from titan.config.live_feed import LiveFeedConfig
from titan.data.feeds import FeedError, RestFeed, WebsocketFeed, build_live_feed
from titan.data.store import CandleStore
from titan.engine.feed import Interval
from titan.testing.fake_exchange import FakeExchange, FakeSeries

# ---------------------------------------------------------------------- REST feed


@pytest.fixture(scope="module")
def source() -> dict[str, pl.DataFrame]:
    return load_source(3000)


def rest_server(source: dict[str, pl.DataFrame], clock: SimClock) -> FakeExchange:
    series = {IDS[s]: FakeSeries.from_frame(frame, "1m") for s, frame in source.items()}
    server = FakeExchange(series, now_ms=clock.now_ms)
    server.state.timeout_s = 0.5
    return server


@pytest.fixture
def sim(source: dict[str, pl.DataFrame]) -> Iterator[tuple[SimClock, FakeExchange]]:
    """Clock 30 s into candle 100 (so candle 99 is the newest closed one)."""
    clock = SimClock(int(source["BTC/USDT"]["timestamp"][100]) + 30_000)
    with rest_server(source, clock) as server:
        yield clock, server


async def take(
    feed: AsyncIterator[Interval], count: int, clock: SimClock, *, close: bool = True
) -> list[Interval]:
    """The next `count` intervals, each checked like the engine relies on."""
    collector = Collector(feed, clock)
    async for interval in collector.feed:
        collector._check(interval)
        collector.intervals.append(interval)
        if len(collector.intervals) == count:
            break
    if close:
        await collector.feed.aclose()
    assert collector.violations == []
    return collector.intervals


def rest_feed(server: FakeExchange, clock: SimClock, tmp_path: Path, **kw: Any) -> RestFeed:
    symbols = kw.pop("symbols", SYMBOLS)
    start_after = kw.pop("start_after", None)
    config = fast_config(**kw)
    store = CandleStore(tmp_path)
    return RestFeed(exchange_factory(server.url), symbols, "1m", clock, config, store, start_after)


def values(intervals: list[Interval], symbol: str) -> pl.DataFrame:
    rows = [
        (c.ts, c.open, c.high, c.low, c.close, c.volume)
        for i in intervals
        for c in i.candles
        if c.symbol == symbol
    ]
    return pl.DataFrame(
        rows, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
    )


async def test_rest_feed_warms_up_then_polls_each_close_for_closed_candles_only(
    sim: tuple[SimClock, FakeExchange], source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    clock, server = sim
    feed = rest_feed(server, clock, tmp_path)
    intervals = await take(feed.__aiter__(), 50, clock)
    assert [i.tradable for i in intervals] == [False] * 30 + [True] * 20
    assert [i.ts for i in intervals] == source["BTC/USDT"]["timestamp"][70:120].to_list()
    for symbol in SYMBOLS:
        assert values(intervals, symbol).equals(source[symbol][70:120])
    assert clock.now_ms() == intervals[-1].ts + MINUTE + 2_000  # polled 2 s after the close
    assert feed.health.snapshot()["backfilled"] == 2 * 30  # warm-up only; polls are not
    assert CandleStore(tmp_path).read(series_id("ETH/USDT")).equals(source["ETH/USDT"][70:120])


async def test_rest_feed_catches_up_after_downtime_from_store_then_paginated_rest(
    source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    stamps = source["BTC/USDT"]["timestamp"]
    store = CandleStore(tmp_path)
    for symbol in SYMBOLS:  # the previous run stored candles 0..399
        store.append(series_id(symbol), source[symbol][:400])
    clock = SimClock(int(stamps[2900]) + 10_000)  # down for 2500 minutes
    with rest_server(source, clock) as server:
        feed = rest_feed(
            server,
            clock,
            tmp_path,
            start_after=int(stamps[299]),
            page_limit=1000,
            max_pending_intervals=2000,
        )
        intervals = await take(feed.__aiter__(), 2600, clock)
        klines = server.requests.count("GET /api/v3/klines")
    assert [i.ts for i in intervals] == stamps[300:2900].to_list()  # no gap, no duplicate
    assert not any(i.tradable for i in intervals)
    assert klines == 2 * 3  # 2500 candles per symbol: 3 pages of <= 1000, nothing refetched
    assert store.read(series_id("BTC/USDT")).equals(source["BTC/USDT"][:2900])


async def test_build_live_feed_rest_kind_runs_through_the_factory(
    sim: tuple[SimClock, FakeExchange], source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    clock, server = sim
    config = LiveFeedConfig(api_url=server.url, request_timeout_s=0.5, warmup_candles=10)
    store = CandleStore(tmp_path)
    factory = build_live_feed(config, "rest", "binance", SYMBOLS, "1m", clock, store)
    intervals = await take(factory(None), 15, clock)
    assert [i.ts for i in intervals] == source["BTC/USDT"]["timestamp"][90:105].to_list()
    assert factory.health.intervals == 15 and factory.health.snapshot()["kind"] == "rest"


async def test_resume_refills_a_store_tail_lost_in_a_hard_stop(
    source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    """kill -9 after the engine checkpointed candle 299 but before the feed flushed
    candles 250..299: the next start refetches them into the store, yields from 300."""
    stamps = source["BTC/USDT"]["timestamp"]
    store = CandleStore(tmp_path)
    for symbol in SYMBOLS:
        store.append(series_id(symbol), source[symbol][:250])
    clock = SimClock(int(stamps[400]) + 10_000)
    with rest_server(source, clock) as server:
        feed = rest_feed(server, clock, tmp_path, start_after=int(stamps[299]))
        intervals = await take(feed.__aiter__(), 100, clock)
    assert [i.ts for i in intervals] == stamps[300:400].to_list()
    for symbol in SYMBOLS:
        assert store.read(series_id(symbol)).equals(source[symbol][:400])


async def test_rest_failure_during_warm_up_is_caught_up_by_the_first_poll(
    sim: tuple[SimClock, FakeExchange], source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    clock, server = sim
    server.inject("503", count=2, path_prefix="/api/v3/klines")  # warm-up gives up
    feed = rest_feed(server, clock, tmp_path, rest_max_attempts=2)
    with capture_logs() as logs:
        intervals = await take(feed.__aiter__(), 35, clock)
    assert [i.ts for i in intervals] == source["BTC/USDT"]["timestamp"][70:105].to_list()
    assert [i.tradable for i in intervals] == [False] * 30 + [True] * 5
    assert any(e["event"] == "feed_poll_failed" for e in logs)


@pytest.mark.parametrize("fault", ["429", "418", "500", "503", "timeout", "malformed"])
async def test_rest_feed_retries_injected_faults(
    fault: str, sim: tuple[SimClock, FakeExchange], source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    clock, server = sim
    server.inject(fault, count=2, path_prefix="/api/v3/klines")
    feed = rest_feed(server, clock, tmp_path)
    intervals = await take(feed.__aiter__(), 40, clock)
    assert values(intervals, "BTC/USDT").equals(source["BTC/USDT"][70:110])
    assert all(len(i.candles) == 2 for i in intervals)


async def test_rest_feed_bad_symbol_fails_that_symbol_only(
    sim: tuple[SimClock, FakeExchange], source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    clock, server = sim
    feed = rest_feed(server, clock, tmp_path, symbols=("BTC/USDT", "DOGE/USDT", "ETH/USDT"))
    iterator = feed.__aiter__()
    with capture_logs() as logs:
        before = await take(iterator, 35, clock, close=False)
        del server.state.series["ETHUSDT"]  # delisted while running: klines -> -1121
        after = await take(iterator, 5, clock)
    failed = [e for e in logs if e["event"] == "feed_symbol_failed"]
    assert [e["symbol"] for e in failed] == ["DOGE/USDT", "ETH/USDT"]
    assert all("BadSymbol" in e["error"] and e["log_level"] == "error" for e in failed)
    assert {c.symbol for i in before for c in i.candles} == {"BTC/USDT", "ETH/USDT"}
    assert all([c.symbol for c in i.candles] == ["BTC/USDT"] for i in after)
    assert [i.ts for i in after] == [before[-1].ts + n * MINUTE for n in range(1, 6)]
    assert feed.health.snapshot()["symbols"]["DOGE/USDT"]["failed"].startswith("BadSymbol")


async def test_rest_feed_every_symbol_failing_is_a_feed_error(
    sim: tuple[SimClock, FakeExchange], tmp_path: Path
) -> None:
    clock, server = sim
    feed = rest_feed(server, clock, tmp_path, symbols=("DOGE/USDT", "XRP/USDT"))
    with pytest.raises(FeedError, match="every symbol failed"):
        await take(feed.__aiter__(), 1, clock)


async def test_rest_feed_emits_a_partial_interval_at_the_deadline_when_a_symbol_lags(
    source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    lagging = {"BTC/USDT": source["BTC/USDT"][:200], "ETH/USDT": source["ETH/USDT"][:105]}
    clock = SimClock(int(source["BTC/USDT"]["timestamp"][100]) + 30_000)
    with rest_server(lagging, clock) as server:
        feed = rest_feed(server, clock, tmp_path, assemble_grace_s=10.0)
        intervals = await take(feed.__aiter__(), 40, clock)
    partial = [i for i in intervals if len(i.candles) == 1]
    assert [i.ts for i in partial] == source["BTC/USDT"]["timestamp"][105:110].to_list()
    assert feed.health.partial_intervals == 5
    assert all(i.tradable for i in partial)  # 10 s late is not stale


async def test_rest_feed_honours_the_rate_limiter(
    source: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    import time

    clock = SimClock(int(source["BTC/USDT"]["timestamp"][500]) + 30_000)
    with rest_server(source, clock) as server:
        config = fast_config(warmup_candles=400)
        make = exchange_factory(server.url, rateLimit=100)
        feed = RestFeed(make, SYMBOLS, "1m", clock, config, CandleStore(tmp_path))
        started = time.monotonic()
        await take(feed.__aiter__(), 400, clock)
        elapsed, requests = time.monotonic() - started, len(server.requests)
    assert requests >= 9  # exchangeInfo + 4 pages per symbol
    assert elapsed >= 0.1 * (requests - 2)


# ---------------------------------------------------------------------- websocket feed


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[StandIns]:
    async with stand_ins(tmp_path) as servers:
        yield servers


def ws_feed(rig: StandIns, start_after: int | None = None, **kw: Any) -> WebsocketFeed:
    symbols = kw.pop("symbols", SYMBOLS)
    config = fast_config(ws_url=rig.ws.url, **kw)
    make = exchange_factory(rig.rest.url)
    return WebsocketFeed(make, symbols, "1m", rig.clock, config, rig.store, start_after)


async def started(rig: StandIns, feed: WebsocketFeed) -> Collector:
    """Consume `feed` once it has warmed up and connected."""
    collector = Collector(feed.__aiter__(), rig.clock).start()
    assert await collector.wait_for(rig.clock.now_ms() // MINUTE * MINUTE - MINUTE)
    await rig.ws.wait_for_connections(1)
    return collector


def assert_complete(rig: StandIns, collector: Collector, first: int, end: int) -> None:
    """Consumed == source over [first, end): no gap, no duplicate, nothing unclosed."""
    assert collector.violations == []
    for symbol in SYMBOLS:
        assert collector.frame(symbol).equals(rig.expected(symbol, first, end)), symbol


def warmup_start(rig: StandIns) -> int:
    return rig.clock.now_ms() // MINUTE * MINUTE - 30 * MINUTE


async def test_ws_feed_streams_closed_klines_after_warm_up(rig: StandIns) -> None:
    first = warmup_start(rig)
    feed = ws_feed(rig)
    collector = await started(rig, feed)
    assert await rig.run_minutes(collector, 10) == 0
    await collector.stop()
    end = rig.clock.now_ms()
    assert_complete(rig, collector, first, end)
    assert [i.tradable for i in collector.intervals] == [False] * 30 + [True] * 10
    snap = feed.health.snapshot()
    assert snap["connects"] == 1 and snap["partial_intervals"] == 0
    # in-progress updates; a duplicate when a close raced the first REST catch-up
    assert set(snap["rejected"]) <= {"not_closed", "duplicate"}
    assert rig.store.read(series_id("BTC/USDT")).equals(rig.expected("BTC/USDT", first, end))


FAULT_SIGNS = {
    "abrupt_close": ("disconnects", "connection_lost"),
    "close_1001": ("disconnects", "closed_1001"),
    "mute_pings": ("disconnects", "ping_timeout"),
    "server_shutdown": ("disconnects", "server_shutdown"),
    "duplicate": ("rejected", "duplicate"),
    "reorder": ("rejected", "duplicate"),
    "malformed": ("rejected", "malformed"),
}


@pytest.mark.parametrize("fault", sorted(FAULT_SIGNS))
async def test_ws_feed_recovers_from_fault_without_gap_duplicate_or_unclosed_candle(
    fault: str, rig: StandIns
) -> None:
    first = warmup_start(rig)
    feed = ws_feed(rig)
    collector = await started(rig, feed)
    await rig.run_minutes(collector, 3)
    with capture_logs() as logs:
        for _ in range(3 if fault != "mute_pings" else 1):
            rig.ws.inject(fault)
            await rig.run_minutes(collector, 2, timeout=0.5)
        if fault == "mute_pings":
            await rig.ws.wait_for_connections(2)  # the keepalive noticed and reconnected
        await rig.run_minutes(collector, 3, timeout=0.5)
    end = rig.clock.now_ms() // MINUTE * MINUTE
    assert await collector.wait_for(end - MINUTE)
    await collector.stop()
    assert_complete(rig, collector, first, end)
    kind, key = FAULT_SIGNS[fault]
    assert feed.health.snapshot()[kind].get(key, 0) >= 1
    backfills = {e["reason"] for e in logs if e["event"] == "feed_backfill"}
    if fault == "reorder":  # a kline that skipped ahead had its gap filled through REST
        assert "gap" in backfills and feed.health.reconnects == 0
    elif kind == "disconnects":
        assert "reconnect" in backfills or feed.health.reconnects >= 1
    for symbol in SYMBOLS:
        assert rig.store.read(series_id(symbol)).equals(rig.expected(symbol, first, end))


async def test_ws_feed_renews_the_connection_before_its_age_limit(rig: StandIns) -> None:
    first = warmup_start(rig)
    feed = ws_feed(rig, max_connection_age_s=150.0)
    collector = await started(rig, feed)
    with capture_logs() as logs:
        await rig.run_minutes(collector, 8)
    await collector.stop()
    assert_complete(rig, collector, first, rig.clock.now_ms())
    assert feed.health.disconnects["max_age"] >= 2
    renewals = [e for e in logs if e["event"] == "feed_reconnecting"]
    assert renewals and all(e["delay_s"] == 0 for e in renewals)  # no backoff for a renewal


async def test_ws_feed_backs_off_exponentially_with_jitter_while_refused(rig: StandIns) -> None:
    feed = ws_feed(rig, backoff_base_s=0.01, backoff_cap_s=0.04)
    collector = await started(rig, feed)
    with capture_logs() as logs:
        rig.ws.inject("reject_handshake", count=5)
        rig.ws.inject("abrupt_close")
        await rig.run_minutes(collector, 2)
        await rig.ws.wait_for_connections(2)
    await collector.stop()
    attempts = [e for e in logs if e["event"] == "feed_reconnecting"]
    assert [e["attempt"] for e in attempts] == [1, 2, 3, 4, 5, 6]
    ceilings = [min(0.04, 0.01 * 2**n) for n in range(6)]
    assert all(e["delay_s"] <= c for e, c in zip(attempts, ceilings, strict=True))
    assert sum(e["event"] == "feed_connect_failed" for e in logs) == 5


async def test_ws_feed_with_no_listed_symbol_raises_feed_error(rig: StandIns) -> None:
    feed = ws_feed(rig, symbols=("DOGE/USDT",))
    collector = Collector(feed.__aiter__(), rig.clock).start()
    assert collector.task is not None
    with pytest.raises(FeedError, match="every symbol failed"):
        await collector.task


async def test_ws_feed_unlisted_symbol_fails_alone(rig: StandIns) -> None:
    feed = ws_feed(rig, symbols=("BTC/USDT", "DOGE/USDT", "ETH/USDT"))
    collector = await started(rig, feed)
    await rig.run_minutes(collector, 3)
    await collector.stop()
    assert collector.violations == []
    assert all(len(i.candles) == 2 for i in collector.intervals)
    assert feed.health.symbols["DOGE/USDT"].failed is not None


async def test_ws_feed_symbol_delisted_during_backfill_fails_alone(rig: StandIns) -> None:
    feed = ws_feed(rig)
    collector = await started(rig, feed)
    del rig.rest.state.series["ETHUSDT"]
    rig.ws.inject("abrupt_close")  # the reconnect's REST catch-up hits BadSymbol for ETH
    assert await rig.run_minutes(collector, 4) == 0
    await collector.stop()
    assert collector.violations == []
    assert [c.symbol for c in collector.intervals[-1].candles] == ["BTC/USDT"]
    assert "BadSymbol" in (feed.health.symbols["ETH/USDT"].failed or "")


async def test_ws_feed_emits_partial_interval_at_deadline_when_a_symbol_is_silent(
    tmp_path: Path,
) -> None:
    async with stand_ins(tmp_path, rows=200) as rig:
        eth = rig.ws.series["ETHUSDT"]  # shared with the REST server
        eth.data = eth.data[:101]  # ETH goes silent after candle 100, on both APIs
        feed = ws_feed(rig, assemble_grace_s=15.0)
        collector = Collector(feed.__aiter__(), rig.clock).start()
        assert await collector.wait_for(rig.clock.now_ms() // MINUTE * MINUTE - MINUTE)
        await rig.ws.advance(2 * MINUTE + 15_000)
        assert await collector.wait_for(rig.clock.now_ms() // MINUTE * MINUTE - 2 * MINUTE)
        await collector.stop()
    partial = [i for i in collector.intervals if len(i.candles) == 1]
    assert partial and feed.health.partial_intervals == len(partial)
    assert collector.violations == []
