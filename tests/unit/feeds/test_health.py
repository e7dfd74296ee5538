"""FeedHealth: counters in the stats snapshot, and one structured event per change."""

from __future__ import annotations

import ccxt
from structlog.testing import capture_logs

from titan.clock import SimClock
from titan.data.candle import Candle, Gap, Reason, Rejection
from titan.data.feeds.health import FeedHealth

STEP = 60_000


def health(now: int = 10 * STEP) -> FeedHealth:
    return FeedHealth("websocket", ["BTC/USDT", "ETH/USDT"], STEP, SimClock(now))


def test_snapshot_reports_last_candle_age_per_symbol_against_the_clock() -> None:
    h = health(now=10 * STEP + 5_000)
    h.accepted(Candle("BTC/USDT", 9 * STEP, 1, 1, 1, 1, 1), "ws")
    h.accepted(Candle("BTC/USDT", 8 * STEP, 1, 1, 1, 1, 1), "rest")
    snap = h.snapshot()["symbols"]
    assert snap["BTC/USDT"]["last_ts"] == 9 * STEP
    assert snap["BTC/USDT"]["last_candle_age_s"] == 5.0  # closed 5 s ago
    assert snap["BTC/USDT"]["candles"] == 2 and snap["BTC/USDT"]["backfilled"] == 1
    assert snap["ETH/USDT"]["last_ts"] is None and snap["ETH/USDT"]["last_candle_age_s"] is None


def test_rejections_are_counted_by_reason_overall_and_per_symbol_and_logged() -> None:
    h = health()
    with capture_logs() as logs:
        h.rejection(Rejection(Reason.MALFORMED, "", None, "invalid JSON"))
        h.rejection(Rejection(Reason.DUPLICATE, "ETH/USDT", 0))
        h.rejection(Rejection(Reason.DUPLICATE, "ETH/USDT", STEP))
    snap = h.snapshot()
    assert snap["rejected"] == {"malformed": 1, "duplicate": 2}
    assert snap["symbols"]["ETH/USDT"]["rejected"] == {"duplicate": 2}
    assert [e["reason"] for e in logs if e["event"] == "candle_rejected"] == [
        "malformed",
        "duplicate",
        "duplicate",
    ]


def test_connection_events_feed_the_reconnect_counters() -> None:
    h = health()
    with capture_logs() as logs:
        h.connected_to("ws://x", 2)
        h.disconnected("closed_1001", 12.5)
        h.reconnecting(1, 0.25)
        h.connected_to("ws://x", 2)
    snap = h.snapshot()
    assert snap["connected"] is True and snap["connects"] == 2 and snap["reconnects"] == 1
    assert snap["disconnects"] == {"closed_1001": 1} and snap["reconnect_attempts"] == 1
    events = {e["event"]: e for e in logs}
    assert events["feed_disconnected"]["reason"] == "closed_1001"
    assert events["feed_disconnected"]["uptime_s"] == 12.5
    assert events["feed_reconnecting"]["attempt"] == 1
    assert events["feed_reconnecting"]["delay_s"] == 0.25


def test_gaps_backfills_late_candles_and_failures_are_reported() -> None:
    h = health()
    with capture_logs() as logs:
        h.gap(Gap("BTC/USDT", 3 * STEP, 4))
        h.backfill("BTC/USDT", 4, 9 * STEP, "reconnect", 3 * STEP)
        h.late(Candle("ETH/USDT", STEP, 1, 1, 1, 1, 1))
        h.symbol_failed("ETH/USDT", ccxt.BadSymbol("binance does not have market symbol"))
    sym = h.snapshot()["symbols"]
    assert sym["BTC/USDT"]["gaps"] == 1 and sym["BTC/USDT"]["missing"] == 4
    assert sym["ETH/USDT"]["late"] == 1
    assert sym["ETH/USDT"]["failed"].startswith("BadSymbol")
    by_event = {e["event"]: e for e in logs}
    assert by_event["feed_gap"]["missing"] == 4 and by_event["feed_gap"]["duration_s"] == 240
    assert by_event["feed_backfill"]["candles"] == 4
    assert by_event["feed_backfill"]["duration_s"] == 60.0  # measured on the feed clock
    assert by_event["feed_symbol_failed"]["log_level"] == "error"
