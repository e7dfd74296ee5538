"""Binance kline frame parser: golden frames, and garbage that must never raise or pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from titan.data.candle import MAX_TS_MS, Candle, Reason, Rejection, check_values
from titan.data.feeds.binance_ws import BinanceKlineParser
from titan.data.feeds.stream import Control, ControlKind, parser_for
from titan.testing.fake_ws import kline_event

FIXTURES = Path(__file__).parent / "fixtures"
PARSER = BinanceKlineParser({"BTCUSDT": "BTC/USDT", "ETHUSDT": "ETH/USDT"}, "1m")


def golden(name: str) -> str:
    return (FIXTURES / f"binance_{name}.json").read_text()


def test_closed_combined_kline_parses_to_the_exact_candle() -> None:
    event = PARSER.parse(golden("kline_closed_combined"))
    assert event == Candle("BTC/USDT", 1746372780000, 95505.4, 95505.5, 95502.7, 95502.7, 16.536)


def test_closed_raw_stream_kline_parses_too() -> None:
    event = PARSER.parse(golden("kline_closed_raw").encode())  # bytes frames are accepted
    assert event == Candle("ETH/USDT", 1746372780000, 1827.29, 1827.68, 1827.27, 1827.53, 763.561)


def test_forming_kline_is_rejected_as_not_closed() -> None:
    event = PARSER.parse(golden("kline_open_combined"))
    assert event == Rejection(Reason.NOT_CLOSED, "BTC/USDT", 1746372780000)


def test_kline_of_an_unsubscribed_symbol_is_rejected_as_unknown() -> None:
    event = PARSER.parse(golden("kline_unknown_symbol"))
    assert isinstance(event, Rejection) and event.reason is Reason.UNKNOWN_SYMBOL


def test_server_shutdown_event_is_a_control_event_raw_or_wrapped() -> None:
    raw = golden("server_shutdown")
    wrapped = json.dumps({"stream": "!serverShutdown", "data": json.loads(raw)})
    for frame in (raw, wrapped):
        event = PARSER.parse(frame)
        assert isinstance(event, Control) and event.kind is ControlKind.SERVER_SHUTDOWN


def test_subscription_ack_is_a_control_event() -> None:
    assert PARSER.parse(golden("subscribe_ack")) == Control(ControlKind.ACK, "1")


def test_combined_stream_url_lists_lowercase_kline_streams() -> None:
    url = PARSER.stream_url("wss://stream.binance.com:9443/")
    assert url == "wss://stream.binance.com:9443/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"


def test_wrong_interval_and_close_time_are_malformed() -> None:
    good = json.loads(golden("kline_closed_combined"))
    for field, value in (("i", "5m"), ("T", 1746372840000), ("x", "true"), ("t", "1")):
        broken: Any = json.loads(json.dumps(good))
        broken["data"]["k"][field] = value
        event = PARSER.parse(json.dumps(broken))
        assert isinstance(event, Rejection) and event.reason is Reason.MALFORMED, field


def test_bad_values_are_rejected_with_the_validator_reason() -> None:
    good = json.loads(golden("kline_closed_combined"))
    cases = {"c": ("NaN", Reason.NOT_FINITE), "l": ("95506.0", Reason.HIGH_BELOW_LOW)}
    cases["o"] = ("-1", Reason.NON_POSITIVE_PRICE)
    for field, (value, reason) in cases.items():
        broken: Any = json.loads(json.dumps(good))
        broken["data"]["k"][field] = value
        event = PARSER.parse(json.dumps(broken))
        assert isinstance(event, Rejection) and event.reason is reason, field


def test_fake_server_frames_round_trip_through_the_parser() -> None:
    row = [1746372780000, 95505.4, 95505.5, 95502.7, 95502.7, 16.536]
    event = kline_event("BTCUSDT", "1m", row, 60_000, closed=True, event_ms=1746372840000)
    parsed = PARSER.parse(json.dumps({"stream": "btcusdt@kline_1m", "data": event}))
    assert parsed == Candle("BTC/USDT", 1746372780000, *row[1:])


def test_binance_futures_uses_the_same_parser_and_unknown_exchanges_are_refused() -> None:
    assert parser_for("binanceusdm") is BinanceKlineParser
    try:
        parser_for("kraken")
    except ValueError as exc:
        assert "kraken" in str(exc) and "rest" in str(exc)
    else:
        raise AssertionError("expected ValueError")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)
kline_fields = st.fixed_dictionaries(
    {},
    optional={
        key: json_values | st.sampled_from(["1m", "BTCUSDT", "1.5", "-2", "nan", "1e400"])
        for key in ("t", "T", "s", "i", "o", "c", "h", "l", "v", "x")
    },
)
frames = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64),
    json_values.map(json.dumps),
    kline_fields.map(lambda k: json.dumps({"stream": "s", "data": {"e": "kline", "k": k}})),
)


@settings(max_examples=400, deadline=None)
@given(frames)
def test_garbage_never_raises_and_never_yields_an_invalid_candle(frame: str | bytes) -> None:
    event = PARSER.parse(frame)
    assert isinstance(event, Candle | Rejection | Control)
    if isinstance(event, Candle):
        assert event.symbol in ("BTC/USDT", "ETH/USDT")
        assert check_values(event, 60_000) is None


@settings(max_examples=200, deadline=None)
@given(
    t=st.integers(0, MAX_TS_MS // 60_000 - 1).map(lambda n: n * 60_000),
    prices=st.lists(st.floats(0.01, 1e6), min_size=4, max_size=4),
    volume=st.floats(0, 1e9),
)
def test_any_valid_closed_kline_parses_to_its_values(
    t: int, prices: list[float], volume: float
) -> None:
    low, high = min(prices), max(prices)
    row = [t, prices[0], high, low, prices[3], volume]
    event = PARSER.parse(
        json.dumps({"data": kline_event("ETHUSDT", "1m", row, 60_000, closed=True, event_ms=t)})
    )
    assert isinstance(event, Candle) and event.ts == t
    assert abs(event.high - high) <= 1e-8 * max(1.0, high)
