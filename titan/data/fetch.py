"""`titan data fetch`: paginated, resumable, rate-limit aware candle download via ccxt.

Only closed candles are stored (open time + timeframe <= now). Each page is validated
at the boundary and appended to the store before the next is requested, so an
interrupted fetch resumes from the last stored candle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog

from titan.clock import Clock
from titan.data.boundary import Boundary
from titan.data.exchange import DEFAULT_BACKOFF, Backoff, call_with_retry
from titan.data.store import CandleStore, SeriesId, candles_to_frame

log = structlog.get_logger(__name__)
Progress = Callable[[int, int], None]  # (cursor ms, end ms)


@dataclass(frozen=True, slots=True)
class FetchResult:
    series: SeriesId
    pages: int
    received: int
    stored: int
    rejected: dict[str, int]


def closed_rows(rows: list[list[Any]], step_ms: int, now_ms: int) -> list[list[Any]]:
    """Rows whose candle has closed: open time + timeframe <= now."""
    return [
        row for row in rows if isinstance(row, list | tuple) and _closes_by(row, step_ms, now_ms)
    ]


def _after_page(page: list[list[Any]], cursor: int, step_ms: int) -> int:
    """The open time after the newest row of the page (valid or not), or `cursor` if none."""
    stamps = [int(row[0]) for row in page if _is_int_like(row[0])]
    return max(stamps) + step_ms if stamps else cursor


def _is_int_like(value: Any) -> bool:
    try:
        int(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return not isinstance(value, bool)


def _closes_by(row: list[Any], step_ms: int, now_ms: int) -> bool:
    try:
        return int(row[0]) + step_ms <= now_ms
    except (TypeError, ValueError, IndexError):
        return True  # malformed rows go on to the boundary, which rejects and logs them


async def fetch_history(
    exchange: Any,
    store: CandleStore,
    series: SeriesId,
    since_ms: int,
    clock: Clock,
    *,
    until_ms: int | None = None,
    page_limit: int = 1000,
    backoff: Backoff = DEFAULT_BACKOFF,
    progress: Progress | None = None,
) -> FetchResult:
    """Download closed candles of `series` from `since_ms` (or the last stored one) to now."""
    step = series.timeframe_ms
    stored_last = store.last_ts(series)
    cursor = max(since_ms, stored_last + step) if stored_last is not None else since_ms
    cursor -= cursor % step
    end = min(until_ms or clock.now_ms(), clock.now_ms())
    boundary = Boundary(step, [series.symbol])
    if stored_last is not None:
        boundary.validator.last_ts[series.symbol] = stored_last
    pages = received = stored = 0
    log.info(
        "fetch_started",
        exchange=exchange.id,
        symbol=series.symbol,
        timeframe=series.timeframe,
        since_ms=cursor,
        until_ms=end,
        resumed=stored_last is not None,
    )
    while cursor + step <= end:
        rows = await call_with_retry(
            partial(exchange.fetch_ohlcv, series.symbol, series.timeframe, cursor, page_limit),
            what="fetch_ohlcv",
            backoff=backoff,
        )
        page = closed_rows(rows, step, end)
        candles = list(boundary.admit_rows(series.symbol, page))
        pages, received = pages + 1, received + len(rows)
        if candles:
            stored += store.append(series, candles_to_frame(candles)).added
        next_cursor = _after_page(page, cursor, step)
        if progress is not None:
            progress(next_cursor, end)
        if next_cursor <= cursor:
            break  # the exchange has nothing newer
        cursor = next_cursor
    result = FetchResult(series, pages, received, stored, boundary.rejected)
    log.info(
        "fetch_finished",
        symbol=series.symbol,
        pages=pages,
        received=received,
        stored=stored,
        rejected=result.rejected,
    )
    return result
