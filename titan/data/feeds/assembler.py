"""IntervalAssembler: per-symbol closed candles in, `Interval`s out, strictly in order.

Policy (times are the feed clock's, `close = ts + step`):

- The interval for `ts` is emitted when every active symbol has reported it (or has
  moved past it: a symbol whose next candle is later has none at `ts`) and the clock has
  reached its close; or, at the latest, at its deadline `close + grace` with the symbols
  that arrived (a *partial* interval).
- Intervals are emitted in strictly increasing `ts`; the oldest pending interval blocks
  the newer ones until it is complete or its deadline passes.
- A candle for a `ts` already emitted is *late*: `add` refuses it (the feed still stores
  it, so the recorded series stays complete, but the consumer never sees it).
- `tradable` is False for warm-up intervals (`ts <= warmup_until`) and for intervals whose
  close is more than `stale` older than the clock when emitted.
- While a REST backfill runs (`hold > 0`) deadlines are suspended: backfilled candles are
  old, so their deadlines have passed, but the other symbols' pages are on their way.
- At most `max_pending` intervals are held; beyond that the oldest are emitted at once.

Pure: no I/O, no clock object; callers pass `now_ms`.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence

from titan.data.candle import Candle
from titan.engine.feed import Interval


class IntervalAssembler:
    def __init__(
        self,
        symbols: Sequence[str],
        step_ms: int,
        *,
        grace_ms: int,
        stale_ms: int,
        max_pending: int = 5000,
    ) -> None:
        self.order = {symbol: index for index, symbol in enumerate(symbols)}
        self.active = set(symbols)
        self.step_ms = step_ms
        self.grace_ms = grace_ms
        self.stale_ms = stale_ms
        self.max_pending = max_pending
        self.pending: dict[int, dict[str, Candle]] = {}
        self._heap: list[int] = []
        self.progress: dict[str, int] = {}  # newest ts reported per symbol
        self.emitted_ts: int | None = None  # watermark: nothing at or before it is emitted
        self.warmup_until: int | None = None
        self.hold = 0  # > 0 while a backfill runs: only complete intervals go out
        self.late: Counter[str] = Counter()
        self.emitted = 0
        self.partial = 0

    def start_after(self, ts: int) -> None:
        """Never emit an interval at or before `ts` (resume point / warm-up start - step)."""
        if self.emitted_ts is None or ts > self.emitted_ts:
            self.emitted_ts = ts

    def add(self, candle: Candle) -> bool:
        """Queue `candle`; False (and counted as late) if its interval was already emitted."""
        if self.emitted_ts is not None and candle.ts <= self.emitted_ts:
            self.late[candle.symbol] += 1
            return False
        group = self.pending.get(candle.ts)
        if group is None:
            group = self.pending[candle.ts] = {}
            heapq.heappush(self._heap, candle.ts)
        group.setdefault(candle.symbol, candle)
        self.progress[candle.symbol] = max(self.progress.get(candle.symbol, candle.ts), candle.ts)
        return True

    def remove_symbol(self, symbol: str) -> None:
        """Stop waiting for `symbol` (it failed); its queued candles are still emitted."""
        self.active.discard(symbol)

    @property
    def backlog(self) -> int:
        return len(self.pending)

    def pop_ready(self, now_ms: int) -> Interval | None:
        """The oldest interval if it may be emitted at `now_ms`, else None."""
        if not self._heap:
            return None
        ts = self._heap[0]
        complete = self._complete(ts)
        forced = len(self._heap) > self.max_pending
        due = now_ms >= self._due(ts, complete) and (complete or not self.hold)
        if not (forced or due):
            return None
        heapq.heappop(self._heap)
        return self._emit(ts, now_ms, complete)

    def drain(self, now_ms: int) -> list[Interval]:
        ready = []
        while (interval := self.pop_ready(now_ms)) is not None:
            ready.append(interval)
        return ready

    def next_wakeup(self) -> int | None:
        """Clock time at which the oldest pending interval becomes emittable (None if empty
        or if it waits for a running backfill)."""
        if not self._heap:
            return None
        ts = self._heap[0]
        complete = self._complete(ts)
        return self._due(ts, complete) if complete or not self.hold else None

    def _due(self, ts: int, complete: bool) -> int:
        close = ts + self.step_ms
        return close if complete else close + self.grace_ms

    def _complete(self, ts: int) -> bool:
        return all(self.progress.get(symbol, ts - 1) >= ts for symbol in self.active)

    def _emit(self, ts: int, now_ms: int, complete: bool) -> Interval:
        group = self.pending.pop(ts)
        candles = tuple(sorted(group.values(), key=lambda c: self.order.get(c.symbol, 0)))
        self.emitted_ts = ts
        self.emitted += 1
        self.partial += 0 if complete else 1
        return Interval(ts, candles, tradable=self._tradable(ts, now_ms))

    def _tradable(self, ts: int, now_ms: int) -> bool:
        if self.warmup_until is not None and ts <= self.warmup_until:
            return False
        return now_ms - (ts + self.step_ms) <= self.stale_ms
