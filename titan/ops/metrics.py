"""Prometheus metrics on an optional HTTP port (`/metrics`, plus `/health` as JSON).

`Metrics` is an engine observer (counters and gauges updated on the engine's task; each
update is a few dict operations) and a log-event listener: candle rejections, gaps,
reconnects and warnings/errors are counted from the structured events, so every module
that logs them is covered without a metrics dependency. Each instance has its own
registry (tests run several daemons in one process). The HTTP server is a tiny asyncio
server, so it starts and stops with the daemon's event loop; no thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from titan.engine.ensemble import Decision
from titan.engine.feed import Interval
from titan.engine.ledger import EquityRow
from titan.ops.stats import dumps, named_attention
from titan.trading.types import Fill

log = structlog.get_logger(__name__)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Route = Callable[[], tuple[int, str, bytes]]


class ProviderCollector(Collector):
    """Exposes numbers read at scrape time: `provider()` -> {name: value}.

    Names ending in `_total` become counters, the rest gauges; None values are skipped.
    """

    def __init__(self, prefix: str, provider: Callable[[], Mapping[str, Any]]) -> None:
        self.prefix, self.provider = prefix, provider

    def collect(self) -> Iterator[Metric]:
        try:
            values = dict(self.provider())
        except Exception:  # a failing provider must not break the scrape
            return
        for name, value in sorted(values.items()):
            if isinstance(value, bool | int | float):
                full = f"{self.prefix}_{name}"
                if name.endswith("_total"):
                    yield CounterMetricFamily(full.removesuffix("_total"), full, value=value)
                else:
                    yield GaugeMetricFamily(full, full, value=float(value))


class Metrics:
    """The daemon's metrics (names in docs/operations.md)."""

    def __init__(
        self,
        starting_cash: float = 0.0,
        registry: CollectorRegistry | None = None,
        model_names: Sequence[str] = (),
    ) -> None:
        self.starting_cash, self.model_names = starting_cash, tuple(model_names)
        self.registry = r = registry or CollectorRegistry()
        self.candles = Counter("titan_candles", "Closed candles processed", ["symbol"], registry=r)
        self.rejects = Counter(
            "titan_candles_rejected", "Candles rejected at the boundary", ["reason"], registry=r
        )
        self.gaps = Counter("titan_candle_gaps", "Gaps in candle series", ["symbol"], registry=r)
        self.intervals = Counter("titan_intervals", "Intervals processed", registry=r)
        self.decisions = Counter("titan_decisions", "Decisions made", ["action"], registry=r)
        self.fills = Counter("titan_fills", "Fills", ["symbol", "side"], registry=r)
        self.latency = Histogram(
            "titan_decision_latency_seconds",
            "Interval received -> decisions committed (one observation per flush)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fusion_loss = Gauge("titan_fusion_loss", "Fusion loss", ["split"], registry=r)
        self.fusion_samples = Gauge("titan_fusion_samples_seen", "Fusion outcomes", registry=r)
        self.fusion_lr = Gauge("titan_fusion_learning_rate", "Fusion learning rate", registry=r)
        self.fusion_overfitting = Gauge(
            "titan_fusion_overfitting", "1 while early stopping pauses training", registry=r
        )
        self.attention = Gauge("titan_fusion_attention", "Attention weight", ["model"], registry=r)
        self.equity = Gauge("titan_equity", "Account equity (quote currency)", registry=r)
        self.pnl = Gauge("titan_pnl", "Equity minus starting cash", registry=r)
        self.exposure = Gauge("titan_exposure", "Gross exposure / equity", registry=r)
        self.last_interval = Gauge(
            "titan_last_interval_timestamp_seconds", "Open time of the last interval", registry=r
        )
        self.reconnects = Counter("titan_reconnects", "Reconnects", ["component"], registry=r)
        self.log_events = Counter(
            "titan_log_events", "Warning and error events", ["level", "event"], registry=r
        )
        self.up = Gauge("titan_up", "1 while the engine runs", registry=r)
        self._last_latency: float | None = None

    def add_provider(self, prefix: str, provider: Callable[[], Mapping[str, Any]]) -> None:
        self.registry.register(ProviderCollector(prefix, provider))

    # ---------------------------------------------------------------- engine hooks

    def on_candles(self, interval: Interval, latency_s: float) -> None:
        for candle in interval.candles:
            self.candles.labels(candle.symbol).inc()
        self.intervals.inc()
        self.last_interval.set(interval.ts / 1000)
        if latency_s > 0 and latency_s != self._last_latency:  # one observation per flush
            self._last_latency = latency_s
            self.latency.observe(latency_s)

    def on_decisions(self, ts: int, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            self.decisions.labels(decision.action).inc()

    def on_fills(self, fills: Sequence[Fill]) -> None:
        for fill in fills:
            self.fills.labels(fill.symbol, fill.side).inc()

    def on_interval(self, ts: int, equity: EquityRow) -> None:
        self.equity.set(equity.equity)
        self.pnl.set(equity.equity - self.starting_cash)
        self.exposure.set(equity.exposure)

    def on_stats(self, ts: int, stats: Mapping[str, Any]) -> None:
        for split in ("train", "val"):
            value = stats.get(f"{split}_loss")
            if isinstance(value, int | float):
                self.fusion_loss.labels(split).set(value)
        self.fusion_samples.set(float(stats.get("samples_seen") or 0))
        self.fusion_lr.set(float(stats.get("current_lr") or 0.0))
        self.fusion_overfitting.set(1.0 if stats.get("is_overfitting") else 0.0)
        for model, weight in (
            named_attention(stats, self.model_names).get("attention") or {}
        ).items():
            self.attention.labels(model).set(float(weight))

    def on_status(self, status: str) -> None:
        self.up.set(1.0 if status == "online" else 0.0)

    # ---------------------------------------------------------------- log events

    def on_log_event(self, event: Mapping[str, Any]) -> None:
        """Count rejects, gaps, reconnects and every warning/error by event name."""
        name = str(event.get("event", ""))
        level = str(event.get("level", ""))
        if name == "candle_rejected":
            self.rejects.labels(str(event.get("reason", "unknown"))).inc()
        elif name == "candle_gap":
            self.gaps.labels(str(event.get("symbol", "unknown"))).inc()
        if "reconnect" in name:
            self.reconnects.labels(name.split("_", 1)[0]).inc()
        if level in ("warning", "error", "critical"):
            self.log_events.labels(level, name).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


# ------------------------------------------------------------------ HTTP


async def serve_http(host: str, port: int, routes: Mapping[str, Route]) -> asyncio.Server:
    """A minimal HTTP/1.1 server: GET/HEAD of `routes` (path -> (status, type, body))."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path = await asyncio.wait_for(_read_request(reader), timeout=5.0)
            status, content_type, body = _route(routes, method, path)
            writer.write(_response(status, content_type, b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, limit=16_384)
    log.info("metrics_listening", host=host, port=bound_port(server))
    return server


def bound_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    line = (await reader.readline()).decode("latin-1").split()
    if len(line) < 2:
        raise ValueError("bad request line")
    for _ in range(100):  # headers, up to the blank line
        if (await reader.readline()).strip() == b"":
            break
    return line[0].upper(), line[1].split("?", 1)[0]


def _route(routes: Mapping[str, Route], method: str, path: str) -> tuple[int, str, bytes]:
    if method not in ("GET", "HEAD"):
        return 405, "text/plain", b"method not allowed\n"
    route = routes.get(path)
    if route is None:
        return 404, "text/plain", b"not found\n"
    return route()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _response(status: int, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def metrics_route(metrics: Metrics) -> Route:
    return lambda: (200, CONTENT_TYPE_LATEST, metrics.exposition())


def json_route(document: Callable[[], tuple[bool, Mapping[str, Any]]]) -> Route:
    """200 with the JSON when healthy, 503 otherwise."""

    def route() -> tuple[int, str, bytes]:
        ok, body = document()
        return (200 if ok else 503), "application/json", dumps(body).encode()

    return route
