"""Timeframe strings ("1m", "4h", "1d") <-> milliseconds."""

from __future__ import annotations

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle of `timeframe` in milliseconds; ValueError if unknown."""
    amount, unit = timeframe[:-1], timeframe[-1:]
    if unit not in _UNIT_MS or not amount.isdigit() or int(amount) <= 0:
        raise ValueError(f"unknown timeframe {timeframe!r} (expected e.g. '1m', '15m', '1h', '1d')")
    return int(amount) * _UNIT_MS[unit]
