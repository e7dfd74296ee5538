"""Feeds: async iterators of `Interval`s of validated, closed candles.

`ReplayFeed` replays stored candles (backtests, the paper demo) through the same
boundary validation as live data, optionally paced at `speed` times real time. With
`features=True` it also computes every candle's feature row in one batch pass over the
series (`titan.features.batch`, bit-identical to the streaming rows) and hands each row
with its candle, so the engine skips the per-candle streaming indicators. Live feeds
(REST, websocket) produce the same `Interval`s, without rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog

from titan.data.boundary import Boundary
from titan.data.candle import Candle
from titan.data.store import COLUMNS, CandleStore, SeriesId
from titan.features.batch import compute_features
from titan.features.kernels import Array
from titan.features.spec import NUM_FEATURES

log = structlog.get_logger(__name__)
# A candle's precomputed feature row: (the symbol's whole feature table, the row's position,
# which is also how many rows the symbol's buffer holds before it). The table lets the
# engine look ahead: base models frozen until their next refit can be run over it at once.
FeatureRow = tuple[Array, int]
MAX_FEATURE_TABLES_BYTES = 512 * 2**20  # above this a replay streams its features instead


@dataclass(frozen=True, slots=True)
class Interval:
    """All closed candles that opened at `ts` (one per symbol that has one).

    `tradable` is False for candles replayed to warm up or catch up after downtime (their
    close is in the past): the engine decides and learns on them but places no orders.
    `features`, when set, holds each candle's precomputed feature row (same order).
    """

    ts: int
    candles: tuple[Candle, ...]
    tradable: bool = True
    features: tuple[FeatureRow, ...] | None = None


@dataclass(slots=True)
class _Series:
    """One symbol's admitted candles to replay and, optionally, their feature rows.

    `offset` counts the admitted candles before the first replayed one (a resumed replay
    computes its features from the series' origin, as the uninterrupted run did)."""

    symbol: str
    candles: np.ndarray  # (n, 6): timestamp, open, high, low, close, volume
    table: Array | None = None
    offset: int = 0
    ts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ts = self.candles[:, 0].astype(np.int64).tolist()

    def candle(self, row: int) -> Candle:
        return Candle(self.symbol, self.ts[row], *self.candles[row, 1:].tolist())

    def feature_row(self, row: int) -> FeatureRow:
        assert self.table is not None
        return self.table, self.offset + row


class ReplayFeed:
    """Stored candles of several symbols, merged by open time, validated, optionally paced.

    Every candle is validated when the feed is made (rejections and gaps are logged then);
    with `features=True` the rows are computed from `start` (the replay's origin) even when
    resuming after `start_after`, so they continue the checkpointed buffers exactly."""

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
        features: bool = False,
    ) -> None:
        self.series = list(series)
        self.timeframe_ms = series[0].timeframe_ms
        self.speed = speed
        self.yield_every = yield_every
        self.boundary = Boundary(self.timeframe_ms, [s.symbol for s in series])
        first = start if start_after is None else max(start or 0, start_after + 1)
        origin = start if features else first
        frames = [store.read(s, origin, end).select(COLUMNS).to_numpy() for s in series]
        if features and sum(len(f) for f in frames) * NUM_FEATURES * 8 > MAX_FEATURE_TABLES_BYTES:
            log.info("replay_features_streamed", reason="too_many_candles")
            features = False
        symbols = [s.symbol for s in series]
        self._series = [
            self._load(symbol, frame, first, features)
            for symbol, frame in zip(symbols, frames, strict=True)
        ]

    def _load(self, symbol: str, frame: np.ndarray, first: int | None, features: bool) -> _Series:
        """Admit the candles (quietly those before `first`: replayed and logged before)."""
        admitted = frame[self.boundary.admit_array(symbol, frame, first)]
        table = compute_features(*admitted[:, 1:].T) if features else None
        offset = 0 if first is None else int(np.count_nonzero(admitted[:, 0] < first))
        return _Series(symbol, admitted[offset:], table, offset)

    @property
    def total(self) -> int:
        """Number of intervals this feed will yield (for progress bars)."""
        return len(self._timestamps())

    def _timestamps(self) -> np.ndarray:
        stamps = [s.candles[:, 0] for s in self._series if len(s.candles)]
        return (
            np.unique(np.concatenate(stamps)).astype(np.int64) if stamps else np.empty(0, np.int64)
        )

    async def __aiter__(self) -> AsyncIterator[Interval]:
        pause = self.timeframe_ms / 1000 / self.speed if self.speed > 0 else 0.0
        for count, interval in enumerate(self._intervals()):
            yield interval
            if pause:
                await asyncio.sleep(pause)
            elif count % self.yield_every == 0:
                await asyncio.sleep(0)  # let signal handlers and publishers run

    def _intervals(self) -> Iterator[Interval]:
        """The series merged by open time, one `Interval` per time that has a candle."""
        cursors = [0] * len(self._series)
        with_rows = all(s.table is not None for s in self._series)
        for ts in self._timestamps().tolist():
            candles, rows = [], []
            for i, series in enumerate(self._series):
                row = cursors[i]
                if row < len(series.ts) and series.ts[row] == ts:
                    cursors[i] = row + 1
                    candles.append(series.candle(row))
                    if with_rows:
                        rows.append(series.feature_row(row))
            yield Interval(ts, tuple(candles), features=tuple(rows) if with_rows else None)
