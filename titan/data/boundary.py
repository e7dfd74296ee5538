"""The boundary: raw rows in, validated closed candles out, every rejection logged."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import structlog

from titan.data.candle import Candle, CandleValidator, Gap, Rejection, parse_candle

log = structlog.get_logger(__name__)


class Boundary:
    """Parses and validates candles for a set of symbols; logs rejections and gaps."""

    def __init__(self, timeframe_ms: int, symbols: Sequence[str] | None = None) -> None:
        self.validator = CandleValidator(timeframe_ms, symbols)

    def admit(self, candle: Candle | Rejection) -> Candle | None:
        """The candle if it passes validation; otherwise None (and a `candle_rejected` event)."""
        result = self.validator.accept(candle)
        if isinstance(result, Rejection):
            _log_rejection(result)
            return None
        if self.validator.last_gap is not None:
            _log_gap(self.validator.last_gap, self.validator.timeframe_ms)
        return result

    def admit_row(self, symbol: str, row: Sequence[Any]) -> Candle | None:
        """Parse a ccxt-style `[ts, o, h, l, c, v]` row and admit it."""
        return self.admit(parse_candle(symbol, row))

    def admit_rows(self, symbol: str, rows: Iterable[Sequence[Any]]) -> Iterator[Candle]:
        for row in rows:
            candle = self.admit_row(symbol, row)
            if candle is not None:
                yield candle

    @property
    def rejected(self) -> dict[str, int]:
        return dict(self.validator.rejected)


def _log_rejection(rejection: Rejection) -> None:
    log.warning(
        "candle_rejected",
        reason=rejection.reason.value,
        symbol=rejection.symbol,
        ts=rejection.ts,
        detail=rejection.detail or None,
    )


def _log_gap(gap: Gap, timeframe_ms: int) -> None:
    log.warning(
        "candle_gap",
        symbol=gap.symbol,
        start_ts=gap.start_ts,
        missing=gap.missing,
        duration_s=gap.missing * timeframe_ms / 1000,
    )
