"""Clocks: the only place Titan reads the wall clock.

`LiveClock` is the wall clock; `SimClock` is advanced by replayed data. Everything
else asks a clock for the time, so backtests and live runs share one code path.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    async def sleep_until(self, ts_ms: int) -> None: ...


class LiveClock:
    """Wall-clock time (UTC ms since the epoch)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep_until(self, ts_ms: int) -> None:
        delay = (ts_ms - self.now_ms()) / 1000
        if delay > 0:
            await asyncio.sleep(delay)


class SimClock:
    """Simulated time, moved forward by the replay; never moves backwards."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance_to(self, ts_ms: int) -> None:
        self._now = max(self._now, ts_ms)

    async def sleep_until(self, ts_ms: int) -> None:
        self.advance_to(ts_ms)
        await asyncio.sleep(0)
