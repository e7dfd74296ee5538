"""Live feeds: async iterators of `Interval`s of validated, closed candles.

`RestFeed` polls ccxt (any exchange); `WebsocketFeed` streams exchange klines (Binance
today; add a parser in `stream.parser_for` for others) and backfills through REST. Both
dedupe on (symbol, open time), never yield out of order, persist to the `CandleStore`
and report `FeedHealth`. `build_live_feed` wires one from config.
"""

from titan.data.feeds.assembler import IntervalAssembler
from titan.data.feeds.binance_ws import BinanceKlineParser
from titan.data.feeds.core import FeedError
from titan.data.feeds.factory import LiveFeedFactory, build_live_feed
from titan.data.feeds.health import FeedHealth
from titan.data.feeds.rest import RestFeed
from titan.data.feeds.stream import Control, ControlKind, StreamEvent, StreamParser, parser_for
from titan.data.feeds.websocket import WebsocketFeed

__all__ = [
    "BinanceKlineParser",
    "Control",
    "ControlKind",
    "FeedError",
    "FeedHealth",
    "IntervalAssembler",
    "LiveFeedFactory",
    "RestFeed",
    "StreamEvent",
    "StreamParser",
    "WebsocketFeed",
    "build_live_feed",
    "parser_for",
]
