"""The health file: the daemon's snapshot, rewritten (atomically) whenever an interval passes.

`titan health` (and `/health` on the metrics port) judges it: healthy while the status is
`online`/`starting` and the last processed interval is younger than `max_age_s` (default
three intervals plus a minute). A daemon killed with -9 leaves `online` behind, but its
timestamps stop moving, so it turns stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from titan.atomic import atomic_write
from titan.data.timeframes import timeframe_ms
from titan.ops.stats import dumps

log = structlog.get_logger(__name__)
Snapshot = Callable[[], dict[str, Any]]
DOWN_STATUSES = frozenset({"stopped", "failed", "offline"})


def default_max_age_s(timeframe: str) -> float:
    """Stale after three missed intervals plus a minute of slack."""
    return 3 * timeframe_ms(timeframe) / 1000 + 60


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """Write to a temporary name, then rename: readers never see half a file."""
    text = dumps(document).encode()
    atomic_write(path, lambda handle: handle.write(text), durable=False)


class HealthWriter:
    """Writes `snapshot()` to `path` at most every `every_s`, only when `version()` moved."""

    def __init__(
        self,
        path: Path,
        snapshot: Snapshot,
        version: Callable[[], int],
        every_s: float,
        max_age_s: float,
    ) -> None:
        self.path, self.snapshot, self.version = path, snapshot, version
        self.every_s, self.max_age_s = every_s, max_age_s
        self._written = -1
        self.writes = 0

    def write(self) -> None:
        document = {**self.snapshot(), "max_age_s": self.max_age_s}
        try:
            write_json_atomic(self.path, document)
        except OSError as exc:
            log.error("health_write_failed", path=str(self.path), error=str(exc))
            return
        self.writes += 1

    async def run(self) -> None:
        """Until cancelled: rewrite the file after every change, at most every `every_s`."""
        while True:
            current = self.version()
            if current != self._written:
                self._written = current
                self.write()
            await asyncio.sleep(self.every_s)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str
    status: str | None = None
    age_s: float | None = None


def judge(document: Mapping[str, Any] | None, now_ms: int, max_age_s: float | None) -> Verdict:
    """Healthy = running and the last interval (or the start) is at most `max_age_s` old."""
    if document is None:
        return Verdict(False, "no health file (daemon never started here?)")
    status = str(document.get("status"))
    limit = max_age_s or float(document.get("max_age_s") or 0) or None
    reference = document.get("last_interval_at") or document.get("started_at")
    age = None if reference is None else max(0.0, (now_ms - int(reference)) / 1000)
    if status in DOWN_STATUSES:
        return Verdict(False, f"daemon {status}", status, age)
    if age is None:
        return Verdict(False, "health file has no timestamps", status, age)
    if limit is not None and age > limit:
        return Verdict(False, f"stale: last interval {age:.0f}s ago (> {limit:.0f}s)", status, age)
    return Verdict(True, "ok", status, age)
