"""RestFeed: closed candles by polling ccxt `fetch_ohlcv` (any ccxt exchange).

Schedule (feed clock): poll `poll_delay_s` after each expected candle close (at once when
that time passed unpolled while the feed was busy: a slow store write or consumer); while
a closed candle is still missing, poll again every `poll_retry_s` until the interval's
deadline (`assemble_grace_s` after the close), when the interval goes out with the
symbols that arrived; after that, poll on the timeframe grid. Each poll fetches every
closed candle after each symbol's last one (pagination covers any downtime), through
ccxt's rate limiter. Only closed candles (open time + timeframe <= now) are used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import ccxt

from titan.clock import Clock
from titan.config.live_feed import LiveFeedConfig
from titan.data.feeds.core import ExchangeFactory, FeedCore, Sleep
from titan.data.feeds.health import FeedHealth
from titan.data.store import CandleStore
from titan.data.timeframes import timeframe_ms
from titan.engine.feed import Interval


class RestFeed:
    """Async iterable of `Interval`s (the `ReplayFeed` shape) from REST polling."""

    kind = "rest"

    def __init__(
        self,
        make_exchange: ExchangeFactory,
        symbols: Sequence[str],
        timeframe: str,
        clock: Clock,
        config: LiveFeedConfig,
        store: CandleStore,
        start_after: int | None = None,
        *,
        health: FeedHealth | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.clock = clock
        self.config = config
        self.start_after = start_after
        self.polled_at = clock.now_ms()  # when the last poll (or the warm-up) started
        self.health = health or FeedHealth(self.kind, symbols, timeframe_ms(timeframe), clock)
        self.core = FeedCore(
            self.health, make_exchange, symbols, timeframe, clock, config, store, sleep=sleep
        )

    async def __aiter__(self) -> AsyncIterator[Interval]:
        core = self.core
        try:
            self.polled_at = self.clock.now_ms()
            await core.open()
            async for _ in core.warm_up(self.start_after):
                while (interval := core.pop_ready()) is not None:
                    yield interval
            while True:
                await self.clock.sleep_until(self._next_poll())
                async for interval in self._poll():
                    yield interval
                await core.maybe_persist()
        finally:
            await core.close()

    async def _poll(self) -> AsyncIterator[Interval]:
        core = self.core
        self.polled_at = self.clock.now_ms()
        try:
            async for _ in core.catch_up("poll"):
                while (interval := core.pop_ready()) is not None:
                    yield interval
        except ccxt.OperationFailed as exc:  # retries exhausted: poll again later
            self.health.poll_failed(exc)
        while (interval := core.pop_ready()) is not None:
            yield interval

    def _next_poll(self) -> int:
        """Clock time of the next poll (see the module docstring)."""
        now, step = self.clock.now_ms(), self.core.step
        delay = round(self.config.poll_delay_s * 1000)
        due = self.core.oldest_missing_close()
        if self.polled_at < due + delay:  # not polled since it was due: then, or now if past
            return due + delay
        deadline = due + round(self.config.assemble_grace_s * 1000)
        if now < deadline:
            return min(now + round(self.config.poll_retry_s * 1000), deadline)
        return ((now - delay) // step + 1) * step + delay
