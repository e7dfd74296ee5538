"""A fake Binance kline websocket server on 127.0.0.1, driven by a manual clock.

`FakeKlineServer` serves combined kline streams (`/stream?streams=btcusdt@kline_1m/...`)
from recorded candles (the same `FakeSeries` as the fake REST server), in Binance's
payload format. Time moves only when a test calls `advance_to`: the server then emits,
per subscribed stream, `updates_per_candle` in-progress klines (`x: false`) inside each
candle and the closing kline (`x: true`, exact recorded values) at its close.

Faults (`inject(kind, count)`), applied at the next tick (`duplicate`/`reorder` at the
next closing tick; `reject_handshake` at the next handshake):

- `abrupt_close`: drop TCP without a close frame;  `close_1001`: close with 1001;
- `mute_pings`: stop answering pings (no auto-pong) on the open connections;
- `server_shutdown`: send Binance's `{"e": "serverShutdown"}` event (and stay open);
- `duplicate`: send each closing kline twice;  `reorder`: hold the first stream's closing
  kline back until after that stream's next closing kline;
- `malformed`: send a garbage frame (seeded choice of several kinds);
- `reject_handshake`: answer the websocket handshake with HTTP 503.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import random
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from titan.data.timeframes import timeframe_ms
from titan.testing.fake_exchange import FakeSeries

WS_FAULTS = (
    "abrupt_close",
    "close_1001",
    "mute_pings",
    "server_shutdown",
    "duplicate",
    "reorder",
    "malformed",
    "reject_handshake",
)
_CONNECTION_FAULTS = ("abrupt_close", "close_1001", "mute_pings", "server_shutdown")
_CLOSING_FAULTS = ("duplicate", "reorder")


class ManualClock:
    """A clock that moves only when told to; `sleep_until` waits until it gets there."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now_ms(self) -> int:
        return self._now

    async def sleep_until(self, ts_ms: int) -> None:
        if ts_ms <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (ts_ms, next(self._order), future))
        try:
            await future
        finally:
            future.cancel()  # no-op when already resolved; a cancelled waiter is skipped

    def advance_to(self, ts_ms: int) -> None:
        self._now = max(self._now, ts_ms)
        while self._waiters and self._waiters[0][0] <= self._now:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():
                future.set_result(None)
        if len(self._waiters) > 1000:  # drop cancelled sleepers so the heap stays bounded
            self._waiters = [item for item in self._waiters if not item[2].done()]
            heapq.heapify(self._waiters)

    def advance(self, ms: int) -> None:
        self.advance_to(self._now + ms)


def kline_event(
    symbol_id: str,
    interval: str,
    row: Sequence[float],
    step_ms: int,
    *,
    closed: bool,
    event_ms: int,
    fraction: float = 1.0,
) -> dict[str, Any]:
    """A Binance kline event for the recorded `row` (ts, o, h, l, c, v); a forming kline
    (`closed=False`) shows the candle `fraction` of the way through."""
    ts, open_, high, low, close, volume = (float(value) for value in row[:6])
    if not closed:
        close = open_ + (close - open_) * fraction
        high, low, volume = max(open_, close), min(open_, close), volume * fraction
    first_trade = int(ts) // 1000
    trades = max(1, int(volume * 10))
    return {
        "e": "kline",
        "E": event_ms,
        "s": symbol_id,
        "k": {
            "t": int(ts),
            "T": int(ts) + step_ms - 1,
            "s": symbol_id,
            "i": interval,
            "f": first_trade,
            "L": first_trade + trades - 1,
            "o": f"{open_:.8f}",
            "c": f"{close:.8f}",
            "h": f"{high:.8f}",
            "l": f"{low:.8f}",
            "v": f"{volume:.8f}",
            "n": trades,
            "x": closed,
            "q": f"{volume * close:.8f}",
            "V": f"{volume / 2:.8f}",
            "Q": f"{volume * close / 2:.8f}",
            "B": "0",
        },
    }


class FakeKlineServer:
    """Run with `async with FakeKlineServer(series, clock) as server:`; `server.url`."""

    def __init__(
        self,
        series: Mapping[str, FakeSeries],
        clock: ManualClock,
        *,
        updates_per_candle: int = 2,
        seed: int = 0,
    ) -> None:
        timeframes = {s.timeframe for s in series.values()}
        if len(timeframes) != 1:
            raise ValueError("all series must share one timeframe")
        self.timeframe = timeframes.pop()
        self.step_ms = timeframe_ms(self.timeframe)
        self.tick_ms = self.step_ms // (updates_per_candle + 1)
        self.series = dict(series)
        self.clock = clock
        self.rng = random.Random(seed)
        self.faults: deque[str] = deque()
        self.clients: dict[ServerConnection, list[str]] = {}
        self.accepted = 0
        self.sent = 0
        self._held: dict[ServerConnection, dict[str, str]] = {}
        self._rejects = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._accept_event = asyncio.Event()
        self._server: Server | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeKlineServer:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=1.0,
            compression=None,
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> FakeKlineServer:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    def inject(self, kind: str, count: int = 1) -> None:
        if kind not in WS_FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {WS_FAULTS}")
        if kind == "reject_handshake":
            self._rejects += count
        else:
            self.faults.extend([kind] * count)

    async def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Until `count` connections have been accepted since the server started."""
        async with asyncio.timeout(timeout):
            while self.accepted < count:
                self._accept_event.clear()
                await self._accept_event.wait()

    # ------------------------------------------------------------------ connections

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self._rejects:
            self._rejects -= 1
            return connection.respond(503, "Service Unavailable\n")
        if self._streams(request.path) is None:
            return connection.respond(400, "Invalid request\n")
        return None

    def _streams(self, target: str) -> list[str] | None:
        parts = urlsplit(target)
        names = parse_qs(parts.query).get("streams", [""])[-1].split("/")
        if parts.path != "/stream" or not all(self._known(name) for name in names):
            return None
        return names

    def _known(self, stream: str) -> bool:
        symbol_id, _, kind = stream.partition("@")
        return symbol_id.upper() in self.series and kind == f"kline_{self.timeframe}"

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        self.clients[connection] = self._streams(connection.request.path) or []
        self._held[connection] = {}
        self.accepted += 1
        self._accept_event.set()
        try:
            await connection.wait_closed()
        finally:
            self.clients.pop(connection, None)
            self._held.pop(connection, None)

    # ------------------------------------------------------------------ time

    async def advance_to(self, ts_ms: int) -> None:
        """Move the clock to `ts_ms`, emitting every tick on the way."""
        while (tick := (self.clock.now_ms() // self.tick_ms + 1) * self.tick_ms) <= ts_ms:
            self.clock.advance_to(tick)
            await self._tick(tick)
        self.clock.advance_to(ts_ms)

    async def advance(self, ms: int) -> None:
        await self.advance_to(self.clock.now_ms() + ms)

    async def _tick(self, tick: int) -> None:
        closing = tick % self.step_ms == 0
        faults = self._take_faults(closing)
        for connection, streams in list(self.clients.items()):
            frames = self._frames(connection, streams, tick, faults)
            for fault in faults:
                self._connection_fault(connection, fault, tick)
            if "abrupt_close" in faults or "close_1001" in faults:
                continue
            for frame in frames:
                await self._send(connection, frame)
        await asyncio.sleep(0)

    def _take_faults(self, closing: bool) -> list[str]:
        taken: list[str] = []
        kept: deque[str] = deque()
        for fault in self.faults:
            (taken if closing or fault not in _CLOSING_FAULTS else kept).append(fault)
        self.faults = kept
        return taken

    def _connection_fault(self, connection: ServerConnection, fault: str, tick: int) -> None:
        if fault == "abrupt_close":
            connection.transport.abort()
        elif fault == "close_1001":
            self._spawn(connection.close(1001, "going away"))
        elif fault == "mute_pings":
            _mute_pongs(connection)
        elif fault == "server_shutdown":
            self._spawn(self._send(connection, json.dumps({"e": "serverShutdown", "E": tick})))

    def _frames(
        self, connection: ServerConnection, streams: list[str], tick: int, faults: list[str]
    ) -> list[str | bytes]:
        frames: list[str | bytes] = [self._garbage(tick) for f in faults if f == "malformed"]
        held = self._held.setdefault(connection, {})
        for index, stream in enumerate(streams):
            message = self._message(stream, tick)
            if message is None:
                continue
            if "reorder" in faults and index == 0:
                if stream in held:  # a second reorder: release the first one now
                    frames.append(held.pop(stream))
                held[stream] = message
                continue
            frames.extend([message] * (2 if "duplicate" in faults else 1))
            if tick % self.step_ms == 0 and stream in held:
                frames.append(held.pop(stream))
        return frames

    async def _send(self, connection: ServerConnection, frame: str | bytes) -> None:
        try:
            await connection.send(frame)
            self.sent += 1
        except ConnectionClosed:
            self.clients.pop(connection, None)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ payloads

    def _message(self, stream: str, tick: int) -> str | None:
        symbol_id = stream.partition("@")[0].upper()
        closing = tick % self.step_ms == 0
        candle_ts = tick - self.step_ms if closing else tick - tick % self.step_ms
        row = self._row(symbol_id, candle_ts)
        if row is None:
            return None
        fraction = 1.0 if closing else (tick % self.step_ms) / self.step_ms
        event = kline_event(
            symbol_id,
            self.timeframe,
            row.tolist(),
            self.step_ms,
            closed=closing,
            event_ms=tick,
            fraction=fraction,
        )
        return json.dumps({"stream": stream, "data": event})

    def _row(self, symbol_id: str, ts: int) -> np.ndarray | None:
        data = self.series[symbol_id].data
        index = int(np.searchsorted(data[:, 0], ts))
        if index < len(data) and int(data[index, 0]) == ts:
            row: np.ndarray = data[index]
            return row
        return None

    def _garbage(self, tick: int) -> str | bytes:
        """One of several frames a parser must reject (none can pass as a valid candle)."""
        symbol_id = next(iter(self.series))
        row = [tick, 100.0, 90.0, 110.0, 100.0, 1.0]  # high below low
        bad_values = kline_event(
            symbol_id, self.timeframe, row, self.step_ms, closed=True, event_ms=tick
        )
        unknown = kline_event(
            "NOPEUSDT", self.timeframe, row, self.step_ms, closed=True, event_ms=tick
        )
        choices: list[str | bytes] = [
            b"\x00\xff\xfe not json",
            '{"stream": "btcusdt@kline_1m", "data": {"e": "kline", "k": ',
            "[1, 2, 3]",
            json.dumps({"stream": "x", "data": {"e": "kline", "k": {"s": symbol_id, "t": "a"}}}),
            json.dumps({"stream": "x", "data": bad_values}),
            json.dumps({"stream": "x", "data": unknown}),
        ]
        return self.rng.choice(choices)


def _mute_pongs(connection: ServerConnection) -> None:
    """Stop answering pings on `connection` (drop the protocol's automatic pongs)."""
    protocol = connection.protocol
    send_frame = protocol.send_frame

    def send_without_pongs(frame: Frame) -> None:
        if frame.opcode is not Opcode.PONG:
            send_frame(frame)

    protocol.send_frame = send_without_pongs  # type: ignore[method-assign]
