"""Binance kline streams: subscription URL and frame parser (spot and USDⓈ-M futures).

Combined stream frames are `{"stream": "btcusdt@kline_1m", "data": <kline event>}`; a
kline event is `{"e": "kline", "E": event ms, "s": "BTCUSDT", "k": {"t": open ms,
"T": close ms, "s", "i", "o", "c", "h", "l", "v", "x": closed?, ...}}` with prices and
volumes as decimal strings. Only closed klines (`x == true`) become candles. A
`serverShutdown` event (raw, wrapped in `data` or in `event`) asks the client to
reconnect. Subscription acks (`{"result": null, "id": 1}`) are control events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from titan.data.candle import Candle, Reason, Rejection, check_values
from titan.data.feeds.stream import Control, ControlKind, StreamEvent
from titan.data.timeframes import timeframe_ms

_PARSE_ERRORS = (TypeError, ValueError, OverflowError, KeyError, AttributeError, RecursionError)
_PRICE_FIELDS = ("o", "h", "l", "c", "v")


class BinanceKlineParser:
    """Parses Binance kline frames for the symbols in `symbols_by_id` (market id -> symbol)."""

    def __init__(self, symbols_by_id: Mapping[str, str], timeframe: str) -> None:
        self.symbols_by_id = {
            market_id.upper(): symbol for market_id, symbol in symbols_by_id.items()
        }
        self.timeframe = timeframe
        self.step_ms = timeframe_ms(timeframe)

    def stream_names(self) -> list[str]:
        return [f"{market_id.lower()}@kline_{self.timeframe}" for market_id in self.symbols_by_id]

    def stream_url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/stream?streams={'/'.join(self.stream_names())}"

    def parse(self, raw: str | bytes) -> StreamEvent:
        try:
            return self._parse(json.loads(raw))
        except _PARSE_ERRORS as exc:
            return _malformed(f"{type(exc).__name__}: {exc}")

    def _parse(self, message: Any) -> StreamEvent:
        if not isinstance(message, dict):
            return _malformed("not a JSON object")
        if "result" in message and "id" in message:
            return Control(ControlKind.ACK, str(message.get("id")))
        event = _unwrap(message)
        kind = event.get("e")
        if kind == "serverShutdown":
            return Control(ControlKind.SERVER_SHUTDOWN, str(event.get("E", "")))
        if kind != "kline":
            return _malformed(f"unexpected event type {kind!r}")
        kline = event.get("k")
        if not isinstance(kline, dict):
            return _malformed("kline event without a 'k' object")
        return self._kline(kline)

    def _kline(self, kline: dict[str, Any]) -> StreamEvent:
        market_id = kline.get("s")
        symbol = self.symbols_by_id.get(market_id) if isinstance(market_id, str) else None
        if symbol is None:
            return Rejection(Reason.UNKNOWN_SYMBOL, str(market_id)[:40], None)
        open_ms, close_ms = _integer(kline.get("t")), _integer(kline.get("T"))
        if kline.get("i") != self.timeframe:
            return _malformed(f"interval {kline.get('i')!r} != {self.timeframe!r}", symbol, open_ms)
        if close_ms != open_ms + self.step_ms - 1:
            return _malformed("close time does not match the interval", symbol, open_ms)
        closed = kline.get("x")
        if not isinstance(closed, bool):
            return _malformed("'x' is not a boolean", symbol, open_ms)
        if not closed:
            return Rejection(Reason.NOT_CLOSED, symbol, open_ms)
        candle = Candle(symbol, open_ms, *(_decimal(kline.get(key)) for key in _PRICE_FIELDS))
        reason = check_values(candle, self.step_ms)
        return candle if reason is None else Rejection(reason, symbol, open_ms)


def _unwrap(message: dict[str, Any]) -> dict[str, Any]:
    """The event inside a combined-stream (`data`) or WebSocket API (`event`) wrapper."""
    for key in ("data", "event"):
        inner = message.get(key)
        if isinstance(inner, dict):
            return inner
    return message


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer timestamp, got {type(value).__name__}")
    return value


def _decimal(value: Any) -> float:
    """Binance sends decimals as strings; plain JSON numbers are accepted too."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a decimal, got {type(value).__name__}")
    return float(value)


def _malformed(detail: str, symbol: str = "", ts: int | None = None) -> Rejection:
    return Rejection(Reason.MALFORMED, symbol, ts, detail[:200])
