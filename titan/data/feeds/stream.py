"""The per-exchange websocket parser interface.

A parser turns one raw websocket frame into one `StreamEvent`: a closed `Candle` (values
already checked), a `Rejection` (malformed, unknown symbol, not closed ...) or a
`Control` event (server shutdown, subscription ack). Parsers never raise: the feed counts
and logs rejections and acts on control events. Add an exchange by writing a parser and
registering its factory in `PARSERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from titan.data.candle import Candle, Rejection


class ControlKind(StrEnum):
    SERVER_SHUTDOWN = "server_shutdown"
    ACK = "ack"


@dataclass(frozen=True, slots=True)
class Control:
    kind: ControlKind
    detail: str = ""


StreamEvent = Candle | Rejection | Control


class StreamParser(Protocol):
    """Builds the subscription URL and parses frames for one exchange's kline streams."""

    def stream_url(self, base_url: str) -> str: ...

    def parse(self, raw: str | bytes) -> StreamEvent: ...


# (exchange market id -> configured symbol, timeframe) -> parser
ParserFactory = Callable[[Mapping[str, str], str], StreamParser]


def parser_for(exchange_id: str) -> ParserFactory:
    """The websocket parser factory for `exchange_id`; ValueError if there is none."""
    from titan.data.feeds.binance_ws import BinanceKlineParser

    parsers: dict[str, ParserFactory] = {
        "binance": BinanceKlineParser,
        "binanceusdm": BinanceKlineParser,  # USDⓈ-M futures klines have the same payload
    }
    try:
        return parsers[exchange_id]
    except KeyError:
        known = ", ".join(sorted(parsers))
        raise ValueError(
            f"no websocket parser for exchange {exchange_id!r} (known: {known}); "
            "use feed.kind = 'rest'"
        ) from None
