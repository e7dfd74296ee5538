"""Prometheus metrics: observer counters, counts from log events, the HTTP endpoint."""

from __future__ import annotations

import asyncio
import io
import json

import structlog
from prometheus_client.parser import text_string_to_metric_families

from titan.data.candle import Candle
from titan.engine.ensemble import Decision, Inputs
from titan.engine.feed import Interval
from titan.engine.ledger import EquityRow
from titan.ops.logging import (
    add_event_listener,
    configure_logging,
    remove_event_listener,
    set_log_level,
)
from titan.ops.metrics import Metrics, bound_port, json_route, metrics_route, serve_http
from titan.trading.types import Fill

log = structlog.get_logger("titan.test.metrics")


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def decision(action_target: float) -> Decision:
    inputs = Inputs((0.6,), (0.2,), ())
    return Decision("BTC/USDT", 0, 1.0, 0.6, 0.2, 0.5, True, action_target, inputs, None)


def test_observer_hooks_feed_the_metrics() -> None:
    metrics = Metrics(starting_cash=1000.0)
    candle = Candle("BTC/USDT", 60_000, 1, 2, 0.5, 1.5, 10)
    metrics.on_candles(Interval(60_000, (candle,)), latency_s=0.004)
    metrics.on_candles(Interval(120_000, (candle,)), latency_s=0.004)  # same flush: one obs.
    metrics.on_decisions(0, [decision(0.5), decision(0.0)])
    metrics.on_fills([Fill("o", "BTC/USDT", 0, "buy", 1.0, 1.0, 0.0)])
    metrics.on_interval(0, EquityRow(0, 1025.0, 10.0, 0.5))
    metrics.on_stats(0, {"train_loss": 0.69, "val_loss": 0.7, "samples_seen": 300,
                         "current_lr": 1e-3, "is_overfitting": True,
                         "attention": {"trend": 0.6, "ml": 0.4}})  # fmt: skip
    metrics.on_status("online")
    s = samples(metrics)
    assert s[("titan_candles_total", (("symbol", "BTC/USDT"),))] == 2
    assert s[("titan_decisions_total", (("action", "long"),))] == 1
    assert s[("titan_decisions_total", (("action", "flat"),))] == 1
    assert s[("titan_fills_total", (("side", "buy"), ("symbol", "BTC/USDT")))] == 1
    assert s[("titan_decision_latency_seconds_count", ())] == 1
    assert s[("titan_decision_latency_seconds_bucket", (("le", "0.005"),))] == 1
    assert (s[("titan_equity", ())], s[("titan_pnl", ())]) == (1025.0, 25.0)
    assert s[("titan_fusion_loss", (("split", "val"),))] == 0.7
    assert s[("titan_fusion_overfitting", ())] == 1.0
    assert s[("titan_fusion_attention", (("model", "trend"),))] == 0.6
    assert s[("titan_last_interval_timestamp_seconds", ())] == 120.0
    assert s[("titan_up", ())] == 1.0


def test_rejects_gaps_reconnects_and_warnings_are_counted_from_log_events() -> None:
    metrics = Metrics()
    for event in (
        {"event": "candle_rejected", "reason": "not_finite", "level": "warning"},
        {"event": "candle_rejected", "reason": "not_finite", "level": "warning"},
        {"event": "candle_gap", "symbol": "BTC/USDT", "level": "warning"},
        {"event": "mqtt_reconnecting", "level": "warning"},
        {"event": "feed_reconnect", "level": "info"},
        {"event": "fill", "level": "info"},
    ):
        metrics.on_log_event(event)
    s = samples(metrics)
    assert s[("titan_candles_rejected_total", (("reason", "not_finite"),))] == 2
    assert s[("titan_candle_gaps_total", (("symbol", "BTC/USDT"),))] == 1
    assert s[("titan_reconnects_total", (("component", "mqtt"),))] == 1
    assert s[("titan_reconnects_total", (("component", "feed"),))] == 1
    assert s[("titan_log_events_total", (("event", "candle_rejected"), ("level", "warning")))] == 2
    assert not any(k[0] == "titan_log_events_total" and ("event", "fill") in k[1] for k in s)


def test_providers_are_read_at_scrape_time() -> None:
    metrics = Metrics()
    state = {"published_total": 3, "queue_depth": 1, "connected": True, "note": "x"}
    metrics.add_provider("titan_mqtt", lambda: state)
    state["published_total"] = 5
    s = samples(metrics)
    assert s[("titan_mqtt_published_total", ())] == 5
    assert s[("titan_mqtt_queue_depth", ())] == 1 and s[("titan_mqtt_connected", ())] == 1
    assert not any(k[0].startswith("titan_mqtt_note") for k in s)


async def fetch(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_http_endpoint_serves_metrics_health_and_errors() -> None:
    metrics = Metrics()
    metrics.on_status("online")
    healthy = [True]
    routes = {
        "/metrics": metrics_route(metrics),
        "/health": json_route(lambda: (healthy[0], {"ok": healthy[0]})),
    }
    server = await serve_http("127.0.0.1", 0, routes)
    port = bound_port(server)
    try:
        status, body = await fetch(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200 and b"titan_up 1.0" in body
        assert await fetch(port, b"GET /health?x=1 HTTP/1.1\r\n\r\n") == (200, b'{"ok":true}')
        healthy[0] = False
        assert (await fetch(port, b"GET /health HTTP/1.1\r\n\r\n"))[0] == 503
        assert (await fetch(port, b"GET /nope HTTP/1.1\r\n\r\n"))[0] == 404
        assert (await fetch(port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0] == 405
        assert await fetch(port, b"HEAD /metrics HTTP/1.1\r\n\r\n") == (200, b"")
    finally:
        server.close()
        await server.wait_closed()


def test_log_event_counts_do_not_depend_on_the_log_level_or_sampling() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream, sample={"candle_rejected": 0})
    metrics = Metrics()
    add_event_listener(metrics.on_log_event)
    try:
        set_log_level("error")  # e.g. the MQTT `log_level` command
        log.warning("candle_rejected", reason="not_finite")
        log.info("feed_reconnecting", attempt=1)
        log.warning("mqtt_reconnecting", error="refused")
        log.debug("candle_rejected", reason="not_closed")
        log.error("order_failed")
    finally:
        remove_event_listener(metrics.on_log_event)
    s = samples(metrics)
    assert s[("titan_candles_rejected_total", (("reason", "not_finite"),))] == 1
    assert s[("titan_candles_rejected_total", (("reason", "not_closed"),))] == 1
    assert s[("titan_reconnects_total", (("component", "feed"),))] == 1
    assert s[("titan_reconnects_total", (("component", "mqtt"),))] == 1
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == [
        "order_failed"  # the output still follows the level
    ]
    log.debug("candle_rejected", reason="after_removal")  # no listener: cheap path again
    assert ("titan_candles_rejected_total", (("reason", "after_removal"),)) not in samples(metrics)
