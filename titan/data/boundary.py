"""The boundary: raw rows in, validated closed candles out, every rejection logged."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import structlog

from titan.data.candle import (
    Candle,
    CandleValidator,
    Gap,
    Rejection,
    parse_candle,
    surely_valid,
)

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

    def admit_array(
        self, symbol: str, rows: np.ndarray, logged_from: int | None = None
    ) -> np.ndarray:
        """Admit stored rows ``[ts, o, h, l, c, v]`` of ``symbol`` in order, exactly as
        `admit` would one by one; the mask of admitted rows. Rows opening before
        ``logged_from`` are checked without events (an earlier run logged them).

        Runs of surely valid rows that follow the previous admitted candle without a gap
        are accepted in bulk; every other row goes through `admit`."""
        kept = np.zeros(len(rows), dtype=bool)
        fast = surely_valid(rows, self.validator.timeframe_ms).tolist()
        stamps = rows[:, 0].astype(np.int64).tolist() if len(rows) else []
        step = self.validator.timeframe_ms
        last, run = self.validator.last_ts.get(symbol), 0
        for i, ts in enumerate(stamps):
            if fast[i] and last is not None and ts - last == step:
                kept[i], last, run = True, ts, run + 1
                continue
            if run and last is not None:
                self.validator.accept_run(symbol, last, run)
                run = 0
            logged = logged_from is None or ts >= logged_from
            kept[i] = self._admit_row(symbol, rows[i].tolist(), logged)
            last = self.validator.last_ts.get(symbol)
        if run and last is not None:
            self.validator.accept_run(symbol, last, run)
        return kept

    def _admit_row(self, symbol: str, values: list[float], logged: bool) -> bool:
        candle = Candle(symbol, int(values[0]), *values[1:6])
        if logged:
            return self.admit(candle) is not None
        return not isinstance(self.validator.accept(candle), Rejection)

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
