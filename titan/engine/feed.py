"""Feeds: async iterators of `Interval`s of validated, closed candles.

`ReplayFeed` replays stored candles (backtests, the paper demo) through the same
boundary validation as live data, optionally paced at `speed` times real time.
Live feeds (REST, websocket) produce the same `Interval`s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np

from titan.data.boundary import Boundary
from titan.data.candle import Candle
from titan.data.store import COLUMNS, CandleStore, SeriesId


@dataclass(frozen=True, slots=True)
class Interval:
    """All closed candles that opened at `ts` (one per symbol that has one).

    `tradable` is False for candles replayed to warm up or catch up after downtime (their
    close is in the past): the engine decides and learns on them but places no orders.
    """

    ts: int
    candles: tuple[Candle, ...]
    tradable: bool = True


class ReplayFeed:
    """Stored candles of several symbols, merged by open time, validated, optionally paced."""

    def __init__(
        self,
        store: CandleStore,
        series: Sequence[SeriesId],
        *,
        start_after: int | None = None,
        start: int | None = None,
        end: int | None = None,
        speed: float = 0.0,
        yield_every: int = 256,
    ) -> None:
        self.series = list(series)
        self.timeframe_ms = series[0].timeframe_ms
        self.speed = speed
        self.yield_every = yield_every
        self.boundary = Boundary(self.timeframe_ms, [s.symbol for s in series])
        first = start if start_after is None else max(start or 0, start_after + 1)
        self._arrays = [store.read(s, first, end).select(COLUMNS).to_numpy() for s in series]

    @property
    def total(self) -> int:
        """Number of intervals this feed will yield (for progress bars)."""
        return len(self._timestamps())

    def _timestamps(self) -> np.ndarray:
        stamps = [array[:, 0] for array in self._arrays if len(array)]
        return (
            np.unique(np.concatenate(stamps)).astype(np.int64) if stamps else np.empty(0, np.int64)
        )

    async def __aiter__(self) -> AsyncIterator[Interval]:
        cursors = [0] * len(self._arrays)
        pause = self.timeframe_ms / 1000 / self.speed if self.speed > 0 else 0.0
        for count, ts in enumerate(self._timestamps().tolist()):
            candles = tuple(self._candles_at(ts, cursors))
            if candles:
                yield Interval(ts, candles)
            if pause:
                await asyncio.sleep(pause)
            elif count % self.yield_every == 0:
                await asyncio.sleep(0)  # let signal handlers and publishers run

    def _candles_at(self, ts: int, cursors: list[int]) -> list[Candle]:
        found = []
        for i, array in enumerate(self._arrays):
            row = cursors[i]
            if row < len(array) and array[row, 0] == ts:
                cursors[i] = row + 1
                values = array[row].tolist()
                candle = self.boundary.admit(
                    Candle(self.series[i].symbol, int(values[0]), *values[1:6])
                )
                if candle is not None:
                    found.append(candle)
        return found
