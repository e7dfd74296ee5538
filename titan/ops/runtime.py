"""`run_daemon`: everything ops-related around `engine.run()`.

Started before the engine runs and stopped after it returns (or fails):
- a `StatsCollector` (engine observer) and the health file it feeds, rewritten after
  every interval (at most every `ops.health.write_every_s`);
- the MQTT publisher and command subscriber, when `ops.mqtt.host` is set;
- the Prometheus endpoint, when `ops.metrics.port` is set;
- sd_notify: READY=1 once the engine is online, WATCHDOG=1 (with a STATUS line) every
  half watchdog period, STOPPING=1 as soon as SIGTERM/SIGINT arrives and at shutdown.
Shutdown publishes the retained `stopped` status (or `offline` after an error), drains
the MQTT queue for at most `ops.mqtt.flush_timeout_s` and writes the final health file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import signal
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from titan.clock import LiveClock
from titan.config import TitanConfig
from titan.config.ops import LOG_LEVELS, OpsConfig
from titan.engine.engine import Engine
from titan.engine.events import EngineControl
from titan.engine.feed import Interval
from titan.engine.records import RunSummary
from titan.ops.health import HealthWriter, default_max_age_s, judge
from titan.ops.logging import (
    add_event_listener,
    current_log_level,
    install_listener_processor,
    remove_event_listener,
    set_log_level,
)
from titan.ops.metrics import Metrics, bound_port, json_route, metrics_route, serve_http
from titan.ops.mqtt import MqttPublisher, read_secret
from titan.ops.sdnotify import Notifier, watchdog_loop
from titan.ops.stats import StatsCollector

log = structlog.get_logger(__name__)
FeedHealth = Callable[[], Mapping[str, Any]]
COMMANDS = ("pause", "resume", "kill", "checkpoint", "log_level")
MAX_COMMAND_BYTES = 4096


def ops_config(config: TitanConfig) -> OpsConfig:
    """`config.ops`, or the defaults while `TitanConfig` has no `ops` section."""
    found = getattr(config, "ops", None)
    return found if isinstance(found, OpsConfig) else OpsConfig()


# ------------------------------------------------------------------ commands


class Controller:
    """Authenticated operator commands -> engine controls; returns the ack document.

    Payload: JSON `{"command": ..., "secret": ..., "id": ..., "ts": ms, ...}`; the command
    may instead be the last topic level (`<base>/control/<command>`). The secret is
    compared in constant time and never logged; a command with a `ts` older than
    `max_age_s` is refused; an `id` seen before is acknowledged but not applied again.
    """

    def __init__(
        self,
        engine: EngineControl,
        secret: str,
        max_age_s: float,
        set_level: Callable[[str], None] = set_log_level,
        clock: LiveClock | None = None,
    ) -> None:
        self.engine, self.secret, self.max_age_s = engine, secret.encode(), max_age_s
        self.set_level, self.clock = set_level, clock or LiveClock()
        self.seen: deque[str] = deque(maxlen=1024)
        self.accepted = 0
        self.rejected = 0

    async def __call__(self, topic: str, payload: bytes) -> dict[str, Any]:
        try:
            body = _parse(payload)
            name = self._authorise(topic, body)
        except ValueError as exc:
            self.rejected += 1
            command_id = _peek_id(payload)
            log.warning("mqtt_command_rejected", topic=topic, id=command_id, reason=str(exc))
            return {"id": command_id, "ok": False, "error": str(exc), "ts": self.clock.now_ms()}
        ack = await self._execute(name, body)
        return {**ack, "ts": self.clock.now_ms()}

    async def _execute(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Apply an authorised command once per id; the ack (without its time)."""
        command_id = body.get("id")
        ack: dict[str, Any] = {"id": command_id, "command": name, "ok": True}
        if command_id is not None and str(command_id) in self.seen:
            return {**ack, "duplicate": True}
        if command_id is not None:
            self.seen.append(str(command_id))
        try:
            await self._apply(name, body)
        except Exception as exc:  # e.g. the broker could not cancel the open orders
            log.exception("mqtt_command_failed", command=name, id=command_id)
            return {**ack, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self.accepted += 1
        log.warning("mqtt_command", command=name, id=command_id)
        return ack

    def _authorise(self, topic: str, body: Mapping[str, Any]) -> str:
        secret = body.get("secret")
        if not isinstance(secret, str) or not hmac.compare_digest(secret.encode(), self.secret):
            raise ValueError("unauthorised")
        name = _command_name(topic, body)
        sent = body.get("ts")
        if sent is not None:
            if not isinstance(sent, int | float):
                raise ValueError("ts must be epoch milliseconds")
            if abs(self.clock.now_ms() - sent) / 1000 > self.max_age_s:
                raise ValueError("stale command (ts too old or in the future)")
        if name == "log_level" and body.get("level") not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
        return name

    async def _apply(self, name: str, body: Mapping[str, Any]) -> None:
        if name == "pause":
            self.engine.pause_trading()
        elif name == "resume":
            self.engine.resume_trading()
        elif name == "kill":
            await self.engine.kill(str(body.get("reason") or "mqtt")[:200])
        elif name == "checkpoint":
            self.engine.request_checkpoint()
        elif name == "log_level":
            self.set_level(str(body["level"]))


def _parse(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_COMMAND_BYTES:
        raise ValueError("payload too large")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("payload is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("payload must be a JSON object")
    return body


def _peek_id(payload: bytes) -> Any:
    with contextlib.suppress(ValueError):
        body = _parse(payload)
        return body.get("id")
    return None


def _command_name(topic: str, body: Mapping[str, Any]) -> str:
    last = topic.rsplit("/", 1)[-1]
    from_topic = None if last == "control" else last
    name = from_topic or body.get("command")
    if from_topic and body.get("command") not in (None, from_topic):
        raise ValueError("command in topic and payload disagree")
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}")
    return str(name)


# ------------------------------------------------------------------ the daemon


class Daemon:
    """The ops parts around one engine run (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        config: TitanConfig,
        ops: OpsConfig,
        *,
        feed_health: FeedHealth | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.engine, self.config, self.ops = engine, config, ops
        self.env = os.environ if env is None else env
        self.clock = LiveClock()
        self.max_age_s = ops.health.max_age_s or default_max_age_s(config.data.timeframe)
        self.collector = StatsCollector(
            ops.mqtt.instance,
            config.mode,
            config.trading.starting_cash,
            model_names=tuple(engine.ensemble.names),
        )
        self.notifier = Notifier(self.env)
        self.metrics: Metrics | None = None
        self.publisher: MqttPublisher | None = None
        self.server: asyncio.Server | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self._previous_hook = engine.on_interval
        self.feed_health = feed_health
        self._providers(feed_health)
        self.health = HealthWriter(
            Path(config.runtime.state_dir) / ops.health.file,
            self.collector.snapshot,
            lambda: self.collector.version,
            ops.health.write_every_s,
            self.max_age_s,
        )

    def _providers(self, feed_health: FeedHealth | None) -> None:
        engine = self.engine
        providers = self.collector.providers
        providers["trading"] = lambda: {
            "paused": engine.trading_paused,
            "killed": engine.trader.killed,
            "decision_latency_s": engine.decision_latency_s,
        }
        providers["models"] = lambda: list(engine.ensemble.names)
        providers["log_level"] = current_log_level
        if feed_health is not None:
            providers["feed"] = feed_health

    # ---------------------------------------------------------------- start

    async def start(self) -> None:
        self.engine.observers.add(self.collector)
        self.engine.observers.add(_ReadyNotifier(self.notifier))
        self.engine.on_interval = self._on_interval
        if self.ops.metrics.port is not None:
            await self._start_metrics()
        if self.ops.mqtt.enabled:
            self._start_mqtt()
        self.tasks.append(asyncio.create_task(self.health.run(), name="health-writer"))
        self.tasks.append(
            asyncio.create_task(
                watchdog_loop(self.notifier, self._watchdog_ok, self._status_line),
                name="sd-watchdog",
            )
        )

    async def _start_metrics(self) -> None:
        self.metrics = Metrics(
            self.config.trading.starting_cash, model_names=self.engine.ensemble.names
        )
        self.engine.observers.add(self.metrics)
        install_listener_processor()
        add_event_listener(self.metrics.on_log_event)
        if self.feed_health is not None:
            self.metrics.add_provider("titan_feed", self.feed_health)
        routes = {"/metrics": metrics_route(self.metrics), "/health": json_route(self._health)}
        self.server = await serve_http(self.ops.metrics.host, self.ops.metrics.port or 0, routes)

    @property
    def metrics_port(self) -> int | None:
        return None if self.server is None else bound_port(self.server)

    def _start_mqtt(self) -> None:
        mqtt = self.ops.mqtt
        password = read_secret(mqtt.password_env, mqtt.password_file, self.env)
        publisher = MqttPublisher(
            mqtt,
            model_names=self.engine.ensemble.names,
            password=password,
            heartbeat=self._heartbeat,
            stats=self.collector.snapshot,
            commands=self._controller(),
        )
        self.publisher = publisher
        self.collector.providers["mqtt"] = publisher.counters
        if self.metrics is not None:
            self.metrics.add_provider("titan_mqtt", publisher.counters)
        self.engine.observers.add(publisher)
        publisher.start()

    def _controller(self) -> Controller | None:
        mqtt = self.ops.mqtt
        if not mqtt.control:
            return None
        secret = read_secret(mqtt.secret_env, mqtt.secret_file, self.env)
        if not secret:
            log.warning("mqtt_control_disabled", reason=f"no secret (set {mqtt.secret_env})")
            return None
        return Controller(self.engine, secret, mqtt.max_command_age_s)

    # ---------------------------------------------------------------- running

    def _on_interval(self, interval: Interval) -> None:
        if self._previous_hook is not None:
            self._previous_hook(interval)
        self.collector.on_candles(interval)
        if self.metrics is not None:
            self.metrics.on_candles(interval, self.engine.decision_latency_s)

    def _health(self) -> tuple[bool, dict[str, Any]]:
        snapshot = {**self.collector.snapshot(), "max_age_s": self.max_age_s}
        verdict = judge(snapshot, self.clock.now_ms(), self.max_age_s)
        return verdict.ok, {"ok": verdict.ok, "reason": verdict.reason, **snapshot}

    def _heartbeat(self) -> dict[str, Any]:
        collector, engine = self.collector, self.engine
        return {
            "instance": collector.instance,
            "sent_at": self.clock.now_ms(),
            "status": collector.status,
            "uptime_s": round((self.clock.now_ms() - collector.started_at) / 1000, 3),
            "last_interval_ts": collector.last_interval_ts,
            "intervals": collector.counts["intervals"],
            "equity": None if collector.equity is None else collector.equity["equity"],
            "paused": engine.trading_paused,
            "killed": engine.trader.killed,
        }

    def _watchdog_ok(self) -> bool:
        """Loop alive (we run) and, with `watchdog_stall_s`, intervals still arriving."""
        stall = self.ops.systemd.watchdog_stall_s
        if stall is None:
            return True
        last = self.collector.last_interval_at or self.collector.started_at
        return (self.clock.now_ms() - last) / 1000 <= stall

    def _status_line(self) -> str:
        """`systemctl status` shows this line."""
        collector, engine = self.collector, self.engine
        trading = "killed" if engine.trader.killed else "paused" if engine.trading_paused else ""
        return (
            f"{collector.status} {trading}: {collector.counts['intervals']} intervals, "
            f"{collector.counts['fills']} fills, last candle {collector.last_interval_ts}"
        ).replace("  ", " ")

    # ---------------------------------------------------------------- stop

    async def stop(self, status: str) -> None:
        self.notifier.stopping(f"{status}")
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.collector.on_status(status)
        self.health.write()
        if self.publisher is not None:
            await self.publisher.stop(status)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.metrics is not None:
            remove_event_listener(self.metrics.on_log_event)
        self.engine.on_interval = self._previous_hook
        log.info("ops_stopped", status=status, health_file=str(self.health.path))

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: tell systemd the stop has begun (STOPPING=1), then stop the
        engine (it finishes the interval, checkpoints and returns)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop_requested)

    def _stop_requested(self) -> None:
        self.notifier.stopping("stopping")
        self.engine.request_stop()

    async def run(self, install_signals: bool = True) -> RunSummary:
        status = "offline"  # after an error: like the last will (systemd restarts us)
        try:
            await self.start()
            if install_signals:
                self.install_signal_handlers()
            summary = await self.engine.run()
            status = "stopped"
            return summary
        finally:
            await self.stop(status)


class _ReadyNotifier:
    """Engine observer: READY=1 when the engine is online (after restore)."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def on_decisions(self, ts: int, decisions: Any) -> None: ...

    def on_fills(self, fills: Any) -> None: ...

    def on_interval(self, ts: int, equity: Any) -> None: ...

    def on_stats(self, ts: int, stats: Any) -> None: ...

    def on_status(self, status: str) -> None:
        if status == "online":
            self.notifier.ready("online")


async def run_daemon(
    engine: Engine,
    config: TitanConfig,
    *,
    ops: OpsConfig | None = None,
    feed_health: FeedHealth | None = None,
    env: Mapping[str, str] | None = None,
    install_signals: bool = True,
) -> RunSummary:
    """Run `engine` with logging, MQTT, metrics, health file and sd_notify around it."""
    daemon = Daemon(engine, config, ops or ops_config(config), feed_health=feed_health, env=env)
    return await daemon.run(install_signals)
