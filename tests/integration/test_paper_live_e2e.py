"""End to end: a paper-trading consumer on a live feed (as `build_live_feed` wires it) over
the local stand-ins, for thousands of simulated minutes of recorded candles with random
faults and one restart after downtime (caught up through paginated REST).

Both feed kinds run the same scenario: the websocket feed with websocket and REST faults,
the REST-polling feed with REST faults on every klines call it makes.

Afterwards the stored candle series is identical to the source (no gap, no duplicate),
every decision was made on closed candles only, and nothing crashed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.unit.feeds.rig import (
    MINUTE,
    SYMBOLS,
    Collector,
    StandIns,
    exchange_factory,
    series_id,
    stand_ins,
)
from titan.config.live_feed import LiveFeedConfig
from titan.data.feeds import LiveFeedFactory, build_live_feed
from titan.data.feeds.factory import FeedKind
from titan.engine.feed import Interval

MINUTES = 3000
RESTART_AT = 1500
DOWNTIME = 250  # minutes the daemon is down: the restart catches up over several pages
PAGE_LIMIT = 100
WS_FAULTS = (
    *("abrupt_close", "close_1001", "mute_pings", "server_shutdown"),
    *("duplicate", "reorder", "malformed", "reject_handshake"),
)
REST_FAULTS = ("429", "418", "500", "503", "malformed", "reset", "timeout")


@dataclass(frozen=True)
class Scenario:
    """What differs between the feed kinds' runs."""

    kind: FeedKind
    lag_ms: int  # after a close, when the feed can have the candle (the REST poll delay)
    wait_s: float  # how long to wait for each interval before moving the clock on
    ws_fault_rate: float  # per minute
    rest_fault_rate: float  # per minute


WEBSOCKET = Scenario("websocket", lag_ms=0, wait_s=0.5, ws_fault_rate=0.04, rest_fault_rate=0.02)
REST = Scenario("rest", lag_ms=2_000, wait_s=2.0, ws_fault_rate=0.0, rest_fault_rate=0.03)


class PaperConsumer(Collector):
    """Mimics the engine: decides on each tradable interval, checkpoints its last ts."""

    def __init__(self, feed: AsyncIterator[Interval], rig: StandIns) -> None:
        super().__init__(feed, rig.clock)
        self.decisions: list[tuple[int, int]] = []  # (interval ts, clock when decided)

    def _check(self, interval: Interval) -> None:
        super()._check(interval)
        if interval.tradable:
            self.decisions.append((interval.ts, self.clock.now_ms()))


def config(rig: StandIns, scenario: Scenario) -> LiveFeedConfig:
    return LiveFeedConfig(
        ws_url=rig.ws.url,
        api_url=rig.rest.url,
        request_timeout_s=0.3,
        poll_delay_s=scenario.lag_ms / 1000,
        warmup_candles=60,
        assemble_grace_s=150.0,
        ping_interval_s=0.1,
        ping_timeout_s=0.5,
        close_timeout_s=0.3,
        backoff_base_s=0.005,
        backoff_cap_s=0.05,
        persist_every=100,
        page_limit=PAGE_LIMIT,
        seed=3,
    )


def feed_factory(rig: StandIns, scenario: Scenario) -> LiveFeedFactory:
    factory = build_live_feed(
        config(rig, scenario), scenario.kind, "binance", SYMBOLS, "1m", rig.clock, rig.store
    )
    if scenario.kind == "rest":
        # Binance's rate limit (50 ms a request, real time) would make a simulated minute
        # of polling cost 0.1 s; the local stand-in needs none.
        factory.make_exchange = exchange_factory(rig.rest.url, timeout=300)  # type: ignore[method-assign]
    return factory


async def drive(
    rig: StandIns, consumer: Collector, minutes: int, rng: random.Random, scenario: Scenario
) -> None:
    """Advance minute by minute, injecting faults at random, waiting for each interval."""
    for _ in range(minutes):
        wait = scenario.wait_s
        if rng.random() < scenario.ws_fault_rate:
            fault = rng.choice(WS_FAULTS)
            rig.ws.inject(fault, count=rng.randint(1, 2))
            wait = 0.05 if fault == "reorder" else wait  # its close arrives a minute late
        if rng.random() < scenario.rest_fault_rate:
            rig.rest.inject(rng.choice(REST_FAULTS), path_prefix="/api/v3/klines")
        close = (rig.clock.now_ms() // MINUTE + 1) * MINUTE
        await rig.ws.advance_to(close + scenario.lag_ms)
        await consumer.wait_for(close - MINUTE, wait)


async def run(
    factory: LiveFeedFactory, rig: StandIns, start_after: Any, minutes: int, scenario: Scenario
) -> PaperConsumer:
    consumer = PaperConsumer(factory(start_after), rig)
    consumer.start()
    assert await consumer.wait_for(rig.clock.now_ms() // MINUTE * MINUTE - MINUTE, 10)
    await drive(rig, consumer, minutes, random.Random(minutes), scenario)
    end = rig.clock.now_ms() // MINUTE * MINUTE
    assert await consumer.wait_for(end - MINUTE, 10), "the feed fell behind"
    await consumer.stop()
    return consumer


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [WEBSOCKET, REST], ids=lambda s: s.kind)
async def test_paper_run_with_random_faults_stores_exactly_the_source(
    scenario: Scenario, tmp_path: Path
) -> None:
    rows = 200 + MINUTES + DOWNTIME + 100
    async with stand_ins(tmp_path, rows=rows, start_index=200, seed=5) as rig:
        rig.rest.state.timeout_s = 0.5
        first = rig.clock.now_ms() // MINUTE * MINUTE - 60 * MINUTE
        factory = feed_factory(rig, scenario)
        with capture_logs() as logs:
            before = await run(factory, rig, None, RESTART_AT, scenario)
            await rig.ws.advance(DOWNTIME * MINUTE)  # the daemon is down
            after = await run(factory, rig, before.last_ts, MINUTES - RESTART_AT, scenario)
        end = rig.clock.now_ms() // MINUTE * MINUTE

    for symbol in SYMBOLS:  # the record is the source: no gap, no duplicate
        assert rig.store.read(series_id(symbol)).equals(rig.expected(symbol, first, end))
    consumed = [i.ts for c in (before, after) for i in c.intervals]
    assert consumed == list(range(first, end, MINUTE))  # and so is what the engine saw
    assert before.violations == [] and after.violations == []
    for ts, decided_at in before.decisions + after.decisions:
        assert ts + MINUTE <= decided_at  # decisions on closed candles only
    snap = factory.health.snapshot()
    assert all(s["failed"] is None for s in snap["symbols"].values())
    if scenario.kind == "websocket":
        assert snap["reconnects"] >= 20 and snap["rejected"].get("malformed", 0) >= 1
        assert snap["rejected"].get("duplicate", 0) >= 1
    events = Counter(e["event"] for e in logs)
    assert events["feed_error"] == 0 and events["feed_symbol_failed"] == 0  # no swallowed bug
    assert events["exchange_retry"] >= 1  # REST faults were met and retried
    catch_up = [e["candles"] for e in logs if e["event"] == "feed_backfill"]
    assert max(catch_up) >= DOWNTIME > PAGE_LIMIT  # the restart's catch-up took several pages
