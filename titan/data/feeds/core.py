"""FeedCore: what the REST and websocket feeds share.

- the ccxt client (created per run, markets loaded, closed at the end);
- per-symbol sequence checks (`CandleValidator`: dedupe on (symbol, open time), order, gaps);
- paginated REST backfill of closed candles (warm-up, catch-up after downtime or a
  reconnect, gap fill), each request retried by `call_with_retry`;
- the `IntervalAssembler`, `FeedHealth`, and batched appends to the `CandleStore`.

Error policy: the ccxt `OperationFailed` family is retried with jittered exponential
backoff (longer for rate limits) and, once retries are exhausted, propagates to the feed
loop (which polls again / reconnects later). The `ExchangeError` family (BadSymbol,
AuthenticationError ...) fails that symbol: a `feed_symbol_failed` error event, the symbol
is dropped, the others continue; `FeedError` once no symbol is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import Any

import ccxt
import structlog

from titan.clock import Clock
from titan.config.live_feed import LiveFeedConfig
from titan.data.candle import (
    Candle,
    CandleValidator,
    Gap,
    Rejection,
    check_values,
    parse_candle,
)
from titan.data.exchange import Backoff, call_with_retry
from titan.data.feeds.assembler import IntervalAssembler
from titan.data.feeds.health import FeedHealth
from titan.data.feeds.persistence import FeedStore
from titan.data.fetch import closed_rows
from titan.data.store import CandleStore
from titan.data.timeframes import timeframe_ms
from titan.engine.feed import Interval

log = structlog.get_logger(__name__)
ExchangeFactory = Callable[[], Any]
Sleep = Callable[[float], Awaitable[None]]


class FeedError(RuntimeError):
    """The feed cannot go on (every symbol failed, the exchange lacks the timeframe ...)."""


def backoff_of(config: LiveFeedConfig) -> Backoff:
    return Backoff(
        base_s=config.backoff_base_s,
        cap_s=config.backoff_cap_s,
        max_attempts=config.rest_max_attempts,
    )


class FeedCore:
    def __init__(
        self,
        health: FeedHealth,
        make_exchange: ExchangeFactory,
        symbols: Sequence[str],
        timeframe: str,
        clock: Clock,
        config: LiveFeedConfig,
        store: CandleStore,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.health = health
        self.make_exchange = make_exchange
        self.symbols = tuple(symbols)
        self.active = list(symbols)
        self.timeframe = timeframe
        self.step = timeframe_ms(timeframe)
        self.clock = clock
        self.config = config
        self.sleep = sleep
        self.backoff = backoff_of(config)
        self.rng = random.Random(config.seed)
        self.validator = CandleValidator(self.step, symbols)
        self.assembler = IntervalAssembler(
            symbols,
            self.step,
            grace_ms=round(config.assemble_grace_s * 1000),
            stale_ms=round(config.stale_after_s * 1000),
            max_pending=config.max_pending_intervals,
        )
        self.exchange: Any = None
        self.market_ids: dict[str, str] = {}
        self.start_ts = 0
        self.changed = asyncio.Event()  # a candle was queued (or the producer stopped)
        self.drained = asyncio.Event()  # an interval was emitted
        self.feed_store = FeedStore(store, symbols, timeframe)

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create the client, load markets (retrying until they load), map symbols to ids."""
        self.exchange = self.make_exchange()
        self.feed_store.exchange = str(self.exchange.id)
        await self._load_markets()
        if self.exchange.timeframes and self.timeframe not in self.exchange.timeframes:
            raise FeedError(f"{self.exchange.id} has no {self.timeframe!r} candles")
        for symbol in self.symbols:
            try:
                self.market_ids[symbol] = str(self.exchange.market(symbol)["id"])
            except ccxt.ExchangeError as exc:
                self.fail(symbol, exc)

    async def _load_markets(self) -> None:
        while True:
            try:
                await self._call(self.exchange.load_markets, "load_markets")
                return
            except ccxt.OperationFailed as exc:
                self.health.poll_failed(exc)
                await self.sleep(self.backoff.cap_s)

    async def close(self) -> None:
        self.feed_store.flush()
        if self.exchange is not None:
            await self.exchange.close()

    def fail(self, symbol: str, error: BaseException) -> None:
        """Drop `symbol` after an ExchangeError; FeedError when no symbol is left."""
        if symbol in self.active:
            self.active.remove(symbol)
            self.assembler.remove_symbol(symbol)
            self.health.symbol_failed(symbol, error)
        if not self.active:
            raise FeedError(f"every symbol failed; last: {symbol}: {error}") from error

    # ------------------------------------------------------------------ candles in

    def next_ts(self, symbol: str) -> int:
        last = self.validator.last_ts.get(symbol)
        return self.start_ts if last is None else last + self.step

    def oldest_missing_close(self) -> int:
        """Close time of the oldest candle not received yet, over the active symbols."""
        return min(self.next_ts(symbol) for symbol in self.active) + self.step

    def accept(self, candle: Candle | Rejection, source: str) -> bool:
        """Validate and queue one candle; rejections are counted and logged, never raised."""
        if isinstance(candle, Candle) and candle.symbol not in self.active:
            return False
        result = self.validator.accept(candle)
        if isinstance(result, Rejection):
            self.health.rejection(result)
            return False
        if self.validator.last_gap is not None:
            self.health.gap(self.validator.last_gap)
        self.health.accepted(result, source)
        if source != "store":
            self.feed_store.add([result])
        if not self.assembler.add(result):
            self.health.late(result)
        self.changed.set()
        return True

    async def ingest_live(self, candle: Candle) -> None:
        """A streamed closed candle: fill any gap before it through REST, then accept it."""
        if candle.symbol not in self.active:
            return
        if candle.ts > self.next_ts(candle.symbol):
            await self.fill_gap(candle.symbol, candle.ts)
        self.accept(candle, "ws")

    # ------------------------------------------------------------------ REST backfill

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Suspend interval deadlines while a backfill runs (see IntervalAssembler)."""
        self.assembler.hold += 1
        try:
            yield
        finally:
            self.assembler.hold -= 1
            self.changed.set()

    async def _call(self, call: Callable[[], Awaitable[Any]], what: str) -> Any:
        return await call_with_retry(
            call, what=what, backoff=self.backoff, rng=self.rng, sleep=self.sleep
        )

    async def _fetch(self, symbol: str, cursor: int) -> tuple[list[Any], int]:
        """One page of raw rows from `cursor` and the limit asked for."""
        # ask for no more than can exist (closed ones + the forming one): lighter requests
        expected = (self.clock.now_ms() - cursor) // self.step + 2
        limit = max(2, min(self.config.page_limit, expected))
        fetch = partial(self.exchange.fetch_ohlcv, symbol, self.timeframe, cursor, limit)
        rows = await self._call(fetch, f"fetch_ohlcv {symbol}")
        return rows if isinstance(rows, list) else [], limit

    async def _page(self, symbol: str, cursor: int, source: str) -> tuple[int, int, bool]:
        """Fetch and accept one page from `cursor`: (accepted, next cursor, no more pages)."""
        rows, limit = await self._fetch(symbol, cursor)
        now = self.clock.now_ms()
        accepted, newest = 0, cursor - self.step
        for row in closed_rows(rows, self.step, now):
            parsed = parse_candle(symbol, row)
            if isinstance(parsed, Candle):
                newest = max(newest, parsed.ts)
            accepted += self.accept(parsed, source)
        after = max(cursor, newest + self.step)
        done = len(rows) < limit or after <= cursor or after + self.step > now
        return accepted, after, done

    async def catch_up(self, reason: str) -> AsyncIterator[None]:
        """Fetch every closed candle after each symbol's last one, a page per symbol per round.

        Yields after each round so the caller can drain intervals (memory stays bounded).
        """
        started = self.clock.now_ms()
        cursors = {symbol: self.next_ts(symbol) for symbol in self.active}
        firsts, counts = dict(cursors), dict.fromkeys(cursors, 0)
        source = "poll" if reason == "poll" else "rest"
        with self.holding():
            while cursors:
                await self._round(cursors, counts, source)
                yield
        for symbol, count in counts.items():
            if count:
                self.health.backfill(symbol, count, started, reason, firsts[symbol])

    async def _round(self, cursors: dict[str, int], counts: dict[str, int], source: str) -> None:
        """One page per symbol; a symbol leaves `cursors` once it is up to date (or failed)."""
        for symbol, cursor in list(cursors.items()):
            if symbol not in self.active or cursor + self.step > self.clock.now_ms():
                del cursors[symbol]
                continue
            try:
                accepted, after, done = await self._page(symbol, cursor, source)
            except ccxt.ExchangeError as exc:
                self.fail(symbol, exc)
                del cursors[symbol]
                continue
            counts[symbol] += accepted
            cursors[symbol] = after
            if done:
                del cursors[symbol]

    async def fill_gap(self, symbol: str, until: int) -> None:
        """Fetch `symbol`'s closed candles from its next expected one up to `until`."""
        started, first = self.clock.now_ms(), self.next_ts(symbol)
        cursor, total = first, 0
        try:
            with self.holding():
                while cursor < until:
                    accepted, cursor, done = await self._page(symbol, cursor, "rest")
                    total += accepted
                    if done:
                        break
        except ccxt.ExchangeError as exc:
            self.fail(symbol, exc)
        if total:
            self.health.backfill(symbol, total, started, "gap", first)

    # ------------------------------------------------------------------ warm-up

    async def warm_up(self, start_after: int | None) -> AsyncIterator[None]:
        """Replay from the store, then REST: from `start_after + step` (resume) or the last
        `warmup_candles` closed candles (fresh start). These intervals are not tradable.
        A REST failure here is logged, not raised: the first poll / connect catches up."""
        now = self.clock.now_ms()
        forming = now - now % self.step
        floor = forming - self.config.max_catchup_candles * self.step
        wanted = forming - self.config.warmup_candles * self.step
        if start_after is not None:
            wanted = start_after + self.step
        self.start_ts = start = self._cap_catchup(wanted, floor)
        self.assembler.start_after(start - self.step)
        self.assembler.warmup_until = forming - self.step
        if start_after is not None:
            self.validator.last_ts.update(dict.fromkeys(self.symbols, start - self.step))
            await self._repair_store_tail(floor, start)
        for count, candle in enumerate(self.feed_store.read_merged(self.active, start, forming)):
            self.accept(candle, "store")
            if count % 1000 == 999:
                yield
        try:
            async for _ in self.catch_up("warmup"):
                yield
        except ccxt.OperationFailed as exc:
            self.health.poll_failed(exc)

    def _cap_catchup(self, start: int, floor: int) -> int:
        """Downtime longer than `max_catchup_candles` is skipped (and reported as a gap)."""
        if start >= floor:
            return start
        for symbol in self.active:
            self.health.gap(Gap(symbol, start, (floor - start) // self.step))
        return floor

    async def _repair_store_tail(self, floor: int, start: int) -> None:
        """After a hard stop the store can end before the resume point (the engine saw
        candles that were never flushed): fetch that stretch into the store only."""
        for symbol in list(self.active):
            last = self.feed_store.last_ts(symbol)
            if last is None or last + self.step >= start:
                continue
            started, cursor = self.clock.now_ms(), max(last + self.step, floor)
            try:
                repaired = await self._refetch(symbol, cursor, start)
            except ccxt.ExchangeError as exc:
                self.fail(symbol, exc)
                continue
            except ccxt.OperationFailed as exc:
                self.health.poll_failed(exc)
                continue
            self.health.backfill(symbol, repaired, started, "store_repair", cursor)

    async def _refetch(self, symbol: str, cursor: int, end: int) -> int:
        """Closed, valid candles of `symbol` in [cursor, end) into the store; the count."""
        total = 0
        while cursor < end:
            rows, _ = await self._fetch(symbol, cursor)
            parsed = (parse_candle(symbol, row) for row in closed_rows(rows, self.step, end))
            candles = [
                c
                for c in parsed
                if isinstance(c, Candle) and cursor <= c.ts < end and not check_values(c, self.step)
            ]
            if not candles:
                break
            self.feed_store.add(candles)
            total, cursor = total + len(candles), max(c.ts for c in candles) + self.step
        return total

    # ------------------------------------------------------------------ intervals out

    def pop_ready(self) -> Interval | None:
        partial_before = self.assembler.partial
        interval = self.assembler.pop_ready(self.clock.now_ms())
        if interval is not None:
            self.health.emitted(self.assembler.partial > partial_before)
            self.feed_store.buffered += 1
            self.drained.set()
        return interval

    async def room(self) -> None:
        """Wait while too many intervals are assembled but not consumed (backpressure)."""
        while self.assembler.backlog >= self.config.max_pending_intervals // 2:
            self.drained.clear()
            await self.drained.wait()

    # ------------------------------------------------------------------ persistence

    async def maybe_persist(self) -> None:
        if self.feed_store.buffered >= self.config.persist_every:
            await self.feed_store.flush_async()
