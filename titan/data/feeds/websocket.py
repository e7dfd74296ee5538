"""WebsocketFeed: closed klines from an exchange websocket, REST for everything missed.

One combined-stream connection for all symbols. A producer task connects, catches up
through REST after every (re)connect, then reads frames: closed klines are accepted
(a kline that skips ahead first has the gap filled through REST), rejections are counted
and logged, and a `serverShutdown` event or the connection reaching `max_connection_age_s`
(feed clock) reconnects at once. Other disconnects (abrupt close, close codes, missed
pongs: the websockets library's keepalive with `ping_interval_s`/`ping_timeout_s`,
refused handshakes) reconnect after exponential backoff with full jitter, capped; the
attempt counter resets once a connection delivers a valid frame. The iterator drains the
`IntervalAssembler` whenever a candle arrives or an interval's deadline passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import ccxt
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from titan.clock import Clock
from titan.config.live_feed import LiveFeedConfig
from titan.data.candle import Candle, Reason, Rejection
from titan.data.feeds.core import ExchangeFactory, FeedCore, FeedError, Sleep
from titan.data.feeds.health import FeedHealth
from titan.data.feeds.stream import ControlKind, ParserFactory, StreamParser, parser_for
from titan.data.store import CandleStore
from titan.data.timeframes import timeframe_ms
from titan.engine.feed import Interval

log = structlog.get_logger(__name__)
PROMPT_RECONNECT = frozenset({"server_shutdown", "max_age"})
_CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake, InvalidURI)
_MAX_EXPONENT = 30


@dataclass
class _Session:
    connected_at: int | None = None
    valid_frames: int = 0


class WebsocketFeed:
    """Async iterable of `Interval`s (the `ReplayFeed` shape) from a kline websocket."""

    kind = "websocket"

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
        parser_factory: ParserFactory | None = None,
        exchange_id: str = "binance",
        health: FeedHealth | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.timeframe = timeframe
        self.clock = clock
        self.config = config
        self.start_after = start_after
        self.parser_factory = parser_factory or parser_for(exchange_id)
        self.health = health or FeedHealth(self.kind, symbols, timeframe_ms(timeframe), clock)
        self.sleep = sleep
        self.connections = 0
        self.core = FeedCore(
            self.health, make_exchange, symbols, timeframe, clock, config, store, sleep=sleep
        )

    async def __aiter__(self) -> AsyncIterator[Interval]:
        core = self.core
        producer = asyncio.create_task(self._produce(), name="titan-feed-websocket")
        try:
            while True:
                core.changed.clear()
                while (interval := core.pop_ready()) is not None:
                    yield interval
                await core.maybe_persist()
                if producer.done():
                    producer.result()  # re-raises FeedError
                    raise FeedError("websocket feed producer stopped")
                await self._wait(producer)
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            self.health.connected = False
            await core.close()

    async def _wait(self, producer: asyncio.Task[None]) -> None:
        """Until a candle is queued, the oldest interval's due time passes, or the producer ends."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.core.changed.wait())]
        wake = self.core.assembler.next_wakeup()
        if wake is not None:
            waiters.append(asyncio.ensure_future(self.clock.sleep_until(wake)))
        try:
            await asyncio.wait([*waiters, producer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    # ------------------------------------------------------------------ producer

    async def _produce(self) -> None:
        core = self.core
        try:
            await core.open()
            ids = {core.market_ids[symbol]: symbol for symbol in core.active}
            parser = self.parser_factory(ids, self.timeframe)
            async for _ in core.warm_up(self.start_after):
                await core.room()
            await self._connect_forever(parser)
        finally:
            core.changed.set()

    async def _connect_forever(self, parser: StreamParser) -> None:
        url = parser.stream_url(self.config.ws_url)
        attempt = 0
        while True:
            session = _Session()
            reason = await self._session(url, parser, session)
            attempt = 1 if session.valid_frames else attempt + 1
            prompt = reason in PROMPT_RECONNECT and attempt == 1
            exponent = min(attempt - 1, _MAX_EXPONENT)
            delay = 0.0 if prompt else self.core.backoff.delay(exponent, self.core.rng)
            self.health.reconnecting(attempt, delay)
            await self.sleep(delay)

    async def _session(self, url: str, parser: StreamParser, session: _Session) -> str:
        """One connection from handshake to close; returns why it ended."""
        try:
            async with self._connect(url) as ws:
                session.connected_at = self.clock.now_ms()
                self.connections += 1
                self.health.connected_to(url, len(self.core.market_ids))
                reason = await self._serve(ws, parser, session)
        except ConnectionClosed as exc:
            reason = _closed_reason(exc)
        except _CONNECT_ERRORS as exc:
            if session.connected_at is None:
                self.health.connect_failed(exc)
                return "connect_failed"
            reason = type(exc).__name__
        except ccxt.OperationFailed as exc:  # REST catch-up gave up: retry on a new connection
            self.health.poll_failed(exc)
            reason = "backfill_failed"
        except FeedError:
            raise
        except Exception as exc:  # a bug must not end a live feed: log it and reconnect
            log.exception("feed_error", feed=self.kind, error=repr(exc))
            reason = "error"
        if session.connected_at is not None:
            uptime = (self.clock.now_ms() - session.connected_at) / 1000
            self.health.disconnected(reason, round(uptime, 3))
        return reason

    def _connect(self, url: str) -> connect:
        config = self.config
        return connect(
            url,
            open_timeout=config.open_timeout_s,
            ping_interval=config.ping_interval_s,
            ping_timeout=config.ping_timeout_s,
            close_timeout=config.close_timeout_s,
            max_size=2**20,
            compression=None,
        )

    async def _serve(self, ws: ClientConnection, parser: StreamParser, session: _Session) -> str:
        """Catch up through REST, then read until the connection ends or must be renewed."""
        reason = "reconnect" if self.connections > 1 else "connect"
        async for _ in self.core.catch_up(reason):
            await self.core.room()
        assert session.connected_at is not None
        renew_at = session.connected_at + round(self.config.max_connection_age_s * 1000)
        aged = asyncio.ensure_future(self.clock.sleep_until(renew_at))
        reader = asyncio.ensure_future(self._read(ws, parser, session))
        try:
            done, _ = await asyncio.wait([aged, reader], return_when=asyncio.FIRST_COMPLETED)
            return reader.result() if reader in done else "max_age"
        finally:
            for task in (aged, reader):
                task.cancel()
            await asyncio.gather(aged, reader, return_exceptions=True)

    async def _read(self, ws: ClientConnection, parser: StreamParser, session: _Session) -> str:
        while True:
            event = parser.parse(await ws.recv())
            if isinstance(event, Candle):
                session.valid_frames += 1
                await self.core.ingest_live(event)
                await self.core.room()
            elif isinstance(event, Rejection):
                session.valid_frames += event.reason is Reason.NOT_CLOSED
                self.health.rejection(event)
            else:
                session.valid_frames += 1
                if event.kind is ControlKind.SERVER_SHUTDOWN:
                    return "server_shutdown"


def _closed_reason(exc: ConnectionClosed) -> str:
    if exc.rcvd is not None:
        return f"closed_{exc.rcvd.code}"
    if exc.sent is not None and exc.sent.code == 1011:
        return "ping_timeout"
    return "connection_lost"
