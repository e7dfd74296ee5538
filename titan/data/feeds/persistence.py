"""FeedStore: a live feed's view of the `CandleStore` (one series per symbol).

Accepted candles are buffered and appended in batches (`flush_async` in a worker thread,
`flush` on close); a failed append keeps its candles for the next attempt. Reads merge
the symbols' stored candles by open time, for warm-up and resume.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
from collections.abc import Iterable, Iterator, Sequence

import structlog

from titan.data.candle import Candle
from titan.data.store import CandleStore, SeriesId, candles_to_frame, frame_to_candles

log = structlog.get_logger(__name__)


class FeedStore:
    def __init__(self, store: CandleStore, symbols: Sequence[str], timeframe: str) -> None:
        self.store = store
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self.exchange = ""  # set once the exchange client exists
        self.buffered = 0  # intervals emitted since the last flush
        self._unsaved: dict[str, list[Candle]] = {symbol: [] for symbol in symbols}
        self._lock = threading.Lock()

    def series(self, symbol: str) -> SeriesId:
        return SeriesId(self.exchange, symbol, self.timeframe)

    def add(self, candles: Iterable[Candle]) -> None:
        for candle in candles:
            self._unsaved[candle.symbol].append(candle)

    def last_ts(self, symbol: str) -> int | None:
        try:
            return self.store.last_ts(self.series(symbol))
        except Exception as exc:  # a damaged file must not stop the feed: REST refills
            log.error("feed_store_unreadable", series=self.series(symbol).filename, error=repr(exc))
            return None

    def read_merged(self, symbols: Sequence[str], start: int, end: int) -> Iterator[Candle]:
        """Stored candles of `symbols` in [start, end), merged by open time."""
        streams = []
        for symbol in symbols:
            series = self.series(symbol)
            try:
                frame = self.store.read(series, start, end)
            except Exception as exc:  # as above
                log.error("feed_store_unreadable", series=series.filename, error=repr(exc))
                continue
            streams.append(frame_to_candles(symbol, frame))
        return heapq.merge(*streams, key=lambda candle: candle.ts)

    async def flush_async(self) -> None:
        self._requeue(await asyncio.to_thread(self._write, self._take()))

    def flush(self) -> None:
        self._requeue(self._write(self._take()))

    def _take(self) -> dict[str, list[Candle]]:
        batch = {symbol: candles for symbol, candles in self._unsaved.items() if candles}
        self._unsaved = {symbol: [] for symbol in self.symbols}
        self.buffered = 0
        return batch

    def _requeue(self, failed: dict[str, list[Candle]]) -> None:
        for symbol, candles in failed.items():
            self._unsaved[symbol][:0] = candles

    def _write(self, batch: dict[str, list[Candle]]) -> dict[str, list[Candle]]:
        """Append each symbol's candles; returns those that could not be written."""
        failed = {}
        with self._lock:  # one writer per series at a time (flush on close vs. worker)
            for symbol, candles in batch.items():
                series = self.series(symbol)
                try:
                    self.store.append(series, candles_to_frame(candles))
                except Exception as exc:  # kept for the next attempt; the feed goes on
                    log.error("feed_store_failed", series=series.filename, error=repr(exc))
                    failed[symbol] = candles
        return failed
