"""`build_live_feed`: one call from config to the engine's feed factory.

    factory = build_live_feed(config.feed.live, "websocket", "binance",
                              ["BTC/USDT", "ETH/USDT"], "1m", LiveClock(), CandleStore(path))
    engine feed: factory(start_after) -> AsyncIterator[Interval]
    stats:       factory.health.snapshot()

Each call of the factory starts a fresh feed (new ccxt client, new connection); the
`FeedHealth` is shared by all of them, so counters survive feed restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from titan.clock import Clock
from titan.config.live_feed import LiveFeedConfig
from titan.data.exchange import make_exchange
from titan.data.feeds.core import Sleep
from titan.data.feeds.health import FeedHealth
from titan.data.feeds.rest import RestFeed
from titan.data.feeds.stream import parser_for
from titan.data.feeds.websocket import WebsocketFeed
from titan.data.store import CandleStore
from titan.data.timeframes import timeframe_ms
from titan.engine.feed import Interval

FeedKind = Literal["rest", "websocket"]

# Titan's ccxt option defaults per exchange (config `exchange_options` is merged over them).
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}},  # spot only: no futures API calls
}


def exchange_options(exchange_id: str, config: LiveFeedConfig) -> dict[str, Any]:
    return {**_DEFAULT_OPTIONS.get(exchange_id, {}), **config.exchange_options}


class LiveFeedFactory:
    """Callable `(start_after) -> AsyncIterator[Interval]`, plus the feed's `health`."""

    def __init__(
        self,
        config: LiveFeedConfig,
        kind: FeedKind,
        exchange_id: str,
        symbols: Sequence[str],
        timeframe: str,
        clock: Clock,
        store: CandleStore,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        _check(config, kind, exchange_id, timeframe)
        self.config = config
        self.kind = kind
        self.exchange_id = exchange_id
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self.clock = clock
        self.store = store
        self.sleep = sleep
        self.health = FeedHealth(kind, self.symbols, timeframe_ms(timeframe), clock)

    def make_exchange(self) -> Any:
        return make_exchange(
            self.exchange_id,
            self.config.api_url,
            timeout=round(self.config.request_timeout_s * 1000),
            options=exchange_options(self.exchange_id, self.config),
        )

    def __call__(self, start_after: int | None) -> AsyncIterator[Interval]:
        args = (self.make_exchange, self.symbols, self.timeframe, self.clock, self.config)
        if self.kind == "rest":
            feed: RestFeed | WebsocketFeed = RestFeed(
                *args, self.store, start_after, health=self.health, sleep=self.sleep
            )
        else:
            feed = WebsocketFeed(
                *args,
                self.store,
                start_after,
                exchange_id=self.exchange_id,
                health=self.health,
                sleep=self.sleep,
            )
        return feed.__aiter__()


def build_live_feed(
    config: LiveFeedConfig,
    kind: FeedKind,
    exchange_id: str,
    symbols: Sequence[str],
    timeframe: str,
    clock: Clock,
    store: CandleStore,
) -> LiveFeedFactory:
    """The engine's feed factory for a live feed; ValueError for an impossible setup."""
    return LiveFeedFactory(config, kind, exchange_id, symbols, timeframe, clock, store)


def _check(config: LiveFeedConfig, kind: str, exchange_id: str, timeframe: str) -> None:
    step_s = timeframe_ms(timeframe) / 1000
    if kind not in ("rest", "websocket"):
        raise ValueError(f"unknown live feed kind {kind!r} (expected 'rest' or 'websocket')")
    if kind == "websocket":
        parser_for(exchange_id)
        if exchange_id == "binanceusdm" and "stream.binance.com" in config.ws_url:
            raise ValueError(
                "feed.live.ws_url points at Binance spot streams; USDⓈ-M futures stream "
                "from wss://fstream.binance.com"
            )
    if config.poll_delay_s >= step_s:
        raise ValueError(f"feed.live.poll_delay_s must be shorter than one {timeframe} candle")
