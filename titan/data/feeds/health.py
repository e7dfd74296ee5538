"""FeedHealth: the feed's counters for stats, and its structured log events.

Every state change of a live feed goes through one method here, which both counts it and
logs it, so stats and logs never disagree. Events: `feed_connected`, `feed_disconnected`
(reason, uptime_s), `feed_connect_failed`, `feed_reconnecting` (attempt, delay_s),
`feed_backfill` (symbol, candles, duration_s), `feed_gap`, `feed_late_candle`,
`feed_symbol_failed` (error), `feed_poll_failed`, `candle_rejected`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from titan.clock import Clock
from titan.data.candle import Candle, Gap, Reason, Rejection

log = structlog.get_logger(__name__)


@dataclass
class SymbolHealth:
    last_ts: int | None = None
    candles: int = 0
    backfilled: int = 0
    gaps: int = 0
    missing: int = 0
    late: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    failed: str | None = None


class FeedHealth:
    """Per-symbol and per-connection health of one live feed; `snapshot()` for stats."""

    def __init__(self, kind: str, symbols: Sequence[str], step_ms: int, clock: Clock) -> None:
        self.kind = kind
        self.step_ms = step_ms
        self.clock = clock
        self.symbols = {symbol: SymbolHealth() for symbol in symbols}
        self.rejected: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.connected = False
        self.connects = 0
        self.reconnect_attempts = 0
        self.intervals = 0
        self.partial_intervals = 0
        self.poll_failures = 0

    # ------------------------------------------------------------------ candles

    def accepted(self, candle: Candle, source: str) -> None:
        """`source`: "ws" (stream), "poll" (REST feed's routine poll), "rest" (a backfill:
        warm-up, catch-up after downtime or a reconnect, gap fill) or "store"."""
        entry = self.symbols[candle.symbol]
        entry.candles += 1
        entry.backfilled += int(source == "rest")
        if entry.last_ts is None or candle.ts > entry.last_ts:
            entry.last_ts = candle.ts

    def rejection(self, rejection: Rejection) -> None:
        reason = rejection.reason.value
        self.rejected[reason] += 1
        if rejection.symbol in self.symbols:
            self.symbols[rejection.symbol].rejected[reason] += 1
        level = log.debug if rejection.reason is Reason.NOT_CLOSED else log.warning
        level(
            "candle_rejected",
            feed=self.kind,
            reason=reason,
            symbol=rejection.symbol or None,
            ts=rejection.ts,
            detail=rejection.detail or None,
        )

    def gap(self, gap: Gap) -> None:
        entry = self.symbols[gap.symbol]
        entry.gaps += 1
        entry.missing += gap.missing
        log.warning(
            "feed_gap",
            feed=self.kind,
            symbol=gap.symbol,
            start_ts=gap.start_ts,
            missing=gap.missing,
            duration_s=gap.missing * self.step_ms / 1000,
        )

    def late(self, candle: Candle) -> None:
        self.symbols[candle.symbol].late += 1
        log.warning("feed_late_candle", feed=self.kind, symbol=candle.symbol, ts=candle.ts)

    def emitted(self, partial: bool) -> None:
        self.intervals += 1
        self.partial_intervals += partial

    def backfill(
        self, symbol: str, candles: int, started_ms: int, reason: str, first_ts: int
    ) -> None:
        routine = reason in ("poll", "connect")  # a poll's or first connect's few candles
        (log.debug if routine else log.info)(
            "feed_backfill",
            feed=self.kind,
            symbol=symbol,
            candles=candles,
            reason=reason,
            from_ts=first_ts,
            duration_s=round((self.clock.now_ms() - started_ms) / 1000, 3),
        )

    def symbol_failed(self, symbol: str, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}"[:300]
        self.symbols[symbol].failed = message
        log.error("feed_symbol_failed", feed=self.kind, symbol=symbol, error=message)

    def poll_failed(self, error: BaseException) -> None:
        self.poll_failures += 1
        log.warning("feed_poll_failed", feed=self.kind, error=f"{type(error).__name__}: {error}")

    # ------------------------------------------------------------------ connections

    def connected_to(self, url: str, streams: int) -> None:
        self.connected = True
        self.connects += 1
        log.info("feed_connected", feed=self.kind, url=url, streams=streams, count=self.connects)

    def disconnected(self, reason: str, uptime_s: float) -> None:
        self.connected = False
        self.disconnects[reason] += 1
        log.warning("feed_disconnected", feed=self.kind, reason=reason, uptime_s=uptime_s)

    def connect_failed(self, error: BaseException) -> None:
        self.disconnects["connect_failed"] += 1
        log.warning("feed_connect_failed", feed=self.kind, error=f"{type(error).__name__}: {error}")

    def reconnecting(self, attempt: int, delay_s: float) -> None:
        self.reconnect_attempts += 1
        log.info("feed_reconnecting", feed=self.kind, attempt=attempt, delay_s=round(delay_s, 3))

    @property
    def reconnects(self) -> int:
        """Successful connections after the first one."""
        return max(0, self.connects - 1)

    # ------------------------------------------------------------------ stats

    def snapshot(self) -> dict[str, Any]:
        """Plain, JSON-ready feed health for the stats store and MQTT."""
        now = self.clock.now_ms()
        return {
            "kind": self.kind,
            "connected": self.connected,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "reconnect_attempts": self.reconnect_attempts,
            "disconnects": dict(self.disconnects),
            "rejected": dict(self.rejected),
            "intervals": self.intervals,
            "partial_intervals": self.partial_intervals,
            "poll_failures": self.poll_failures,
            "backfilled": sum(entry.backfilled for entry in self.symbols.values()),
            "symbols": {symbol: self._symbol(entry, now) for symbol, entry in self.symbols.items()},
        }

    def _symbol(self, entry: SymbolHealth, now: int) -> dict[str, Any]:
        age = None if entry.last_ts is None else (now - entry.last_ts - self.step_ms) / 1000
        return {
            "last_ts": entry.last_ts,
            "last_candle_age_s": age,
            "candles": entry.candles,
            "backfilled": entry.backfilled,
            "gaps": entry.gaps,
            "missing": entry.missing,
            "late": entry.late,
            "rejected": dict(entry.rejected),
            "failed": entry.failed,
        }
