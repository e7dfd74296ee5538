"""MQTT: signals, decisions, fills, stats, heartbeat and status out; control commands in.

Topics (base = `<prefix>/<instance>`; payload schemas in docs/operations.md):

    <base>/signal/<symbol>    QoS 1  every decision, compact (id + ts for de-duplication)
    <base>/decision/<symbol>  QoS 1  every decision with model inputs and attention
    <base>/fill/<symbol>      QoS 1  every fill (id = order id)
    <base>/stats              QoS 0  retained, every `stats_s` and at shutdown
    <base>/heartbeat          QoS 0  every `heartbeat_s`
    <base>/status             QoS 1  retained: online | stopped; last will: offline
    <base>/control[/<cmd>]    in     pause | resume | kill | checkpoint | log_level
    <base>/ack                QoS 1  one reply per command

Publishing never blocks the engine: observer hooks only append to a bounded `Outbox`
(the oldest message is dropped, counted and logged when it is full); one connection task
drains it, reconnecting with exponential backoff and jitter while the broker is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import stat
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiomqtt
import structlog

from titan.clock import LiveClock
from titan.config.ops import MqttConfig
from titan.engine.ensemble import Decision
from titan.engine.ledger import EquityRow
from titan.ops.logging import register_secret
from titan.ops.stats import decision_payload, dumps, fill_payload, signal_payload
from titan.trading.types import Fill

log = structlog.get_logger(__name__)
Document = Callable[[], Mapping[str, Any]]
Handler = Callable[[str, bytes], Awaitable[Mapping[str, Any] | None]]  # -> ack document
BATCH = 64
DROP_LOG_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class Message:
    """`payload` is bytes, or a builder called when the message is sent (off the engine's
    hook: building and encoding 200 documents per 100-symbol interval costs milliseconds)."""

    topic: str
    payload: bytes | Callable[[], Mapping[str, Any]]
    qos: int = 1
    retain: bool = False

    def encoded(self) -> bytes:
        return self.payload if isinstance(self.payload, bytes) else encode(self.payload())


def encode(document: Mapping[str, Any]) -> bytes:
    return dumps(document).encode()


class Outbox:
    """Bounded FIFO between the engine's hooks and the connection task; drops the oldest."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.clock = size, clock
        self._items: deque[Message] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0
        self._unlogged = 0
        self._logged_at = -DROP_LOG_EVERY_S

    def __len__(self) -> int:
        return len(self._items)

    def put(self, message: Message) -> None:
        if len(self._items) >= self.size:
            self._items.popleft()
            self._drop(1)
        self._items.append(message)
        self._ready.set()

    def requeue(self, batch: Sequence[Message]) -> None:
        """Put an unsent batch back at the front (as far as there is room)."""
        for message in reversed(batch):
            if len(self._items) < self.size:
                self._items.appendleft(message)
            else:
                self._drop(1)
        if self._items:
            self._ready.set()

    async def take(self, limit: int = BATCH) -> list[Message]:
        """Up to `limit` messages, waiting for the first."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        count = min(limit, len(self._items))
        return [self._items.popleft() for _ in range(count)]

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._unlogged += count
        now = self.clock()
        if now - self._logged_at >= DROP_LOG_EVERY_S:
            log.warning("mqtt_dropped", dropped=self._unlogged, total=self.dropped, size=self.size)
            self._logged_at, self._unlogged = now, 0


# ------------------------------------------------------------------ connection


class SecretError(RuntimeError):
    """A secret file that others can read (it must be 0600 or stricter)."""


def read_secret(env_name: str, file: Path | None, env: Mapping[str, str]) -> str | None:
    """A secret from a 0600 file (preferred) or an environment variable; registered for
    redaction. None when neither is set."""
    value: str | None = None
    if file is not None:
        mode = file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(f"{file} is readable by others (chmod 600)")
        value = file.read_text().strip()
    else:
        value = env.get(env_name) or None
    register_secret(value)
    return value


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    tls = config.tls
    if not tls.enabled:
        return None
    context = ssl.create_default_context(cafile=None if tls.ca_file is None else str(tls.ca_file))
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.insecure:
        context.check_hostname = False
    return context


def make_client(config: MqttConfig, password: str | None) -> aiomqtt.Client:
    """A client for one connection attempt, with the retained `offline` last will."""
    if config.host is None:
        raise ValueError("ops.mqtt.host is not set")
    client = aiomqtt.Client(
        config.host,
        config.port,
        username=config.username,
        password=password if config.username is not None else None,
        identifier=config.client_id or f"titan-{config.instance}",
        keepalive=config.keepalive_s,
        will=aiomqtt.Will(f"{config.base}/status", b"offline", qos=1, retain=True),
        tls_context=tls_context(config),
        timeout=10.0,
    )
    client.pending_calls_threshold = BATCH + 16  # our batches are bounded; no warning spam
    return client


class MqttPublisher:
    """Engine observer + the connection task (see the module docstring)."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        model_names: Sequence[str] = (),
        password: str | None = None,
        heartbeat: Document | None = None,
        stats: Document | None = None,
        commands: Handler | None = None,
        clock: LiveClock | None = None,
    ) -> None:
        self.config, self.base = config, config.base
        self.names = tuple(model_names)
        self.password = password
        self.heartbeat, self.stats_document, self.commands = heartbeat, stats, commands
        self.clock = clock or LiveClock()
        self.outbox = Outbox(config.queue_size)
        self.connected = False
        self.published = 0
        self.connects = 0
        self._inflight = 0
        self._heartbeats = 0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.connected_event = asyncio.Event()

    # ---------------------------------------------------------------- observer hooks

    def on_decisions(self, ts: int, decisions: Sequence[Decision]) -> None:
        now, instance, names = self.clock.now_ms(), self.config.instance, self.names
        for decision in decisions:
            symbol = decision.symbol
            if self.config.signals:
                build = partial(signal_payload, instance, decision, now)
                self.outbox.put(Message(f"{self.base}/signal/{symbol}", build))
            if self.config.decisions:
                build = partial(decision_payload, instance, decision, names, now)
                self.outbox.put(Message(f"{self.base}/decision/{symbol}", build))

    def on_fills(self, fills: Sequence[Fill]) -> None:
        now = self.clock.now_ms()
        for fill in fills:
            build = partial(fill_payload, self.config.instance, fill, now)
            self.outbox.put(Message(f"{self.base}/fill/{fill.symbol}", build))

    def on_interval(self, ts: int, equity: EquityRow) -> None:
        """Nothing per interval: the equity travels in `stats` and `heartbeat`."""

    def on_stats(self, ts: int, stats: Mapping[str, Any]) -> None:
        """Fusion stats reach MQTT through the periodic `stats` document."""

    def on_status(self, status: str) -> None:
        """`online` is published on connect, the final status by `stop`."""

    def _put(self, suffix: str, document: Mapping[str, Any], qos: int = 1) -> None:
        self.outbox.put(Message(f"{self.base}/{suffix}", encode(document), qos))

    def _put_stats(self) -> None:
        """The stats document: retained, so a newcomer sees the latest at once."""
        if self.stats_document is not None:
            payload = encode(self.stats_document())
            self.outbox.put(Message(f"{self.base}/stats", payload, 0, True))

    def publish(self, suffix: str, document: Mapping[str, Any], *, qos: int = 1) -> None:
        """Queue any document under the base topic (used for acks)."""
        self._put(suffix, document, qos)

    def counters(self) -> dict[str, float]:
        return {
            "published_total": self.published,
            "dropped_total": self.outbox.dropped,
            "queue_depth": len(self.outbox),
            "connected": float(self.connected),
        }

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def stop(self, status: str = "stopped", timeout_s: float | None = None) -> bool:
        """Publish the final stats and retained `status`, drain (up to the timeout), close.

        Returns True when everything queued went out."""
        timeout = self.config.flush_timeout_s if timeout_s is None else timeout_s
        if self.connected:
            self._put_stats()
        self.outbox.put(Message(f"{self.base}/status", status.encode(), 1, True))
        drained = await self._drain_wait(timeout)
        if not drained:
            log.warning("mqtt_flush_timeout", unsent=len(self.outbox), timeout_s=timeout)
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        log.info("mqtt_stopped", status=status, published=self.published, drained=drained)
        return drained

    async def _drain_wait(self, timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.outbox) or self._inflight:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _run(self) -> None:
        delay = self.config.reconnect_min_s
        while not self._closing:
            error = "connection closed"
            try:
                async with make_client(self.config, self.password) as client:
                    delay = self.config.reconnect_min_s
                    await self._connected(client)
            except aiomqtt.MqttError as exc:
                error = str(exc)
            except Exception as exc:  # a bug in a provider or handler: log, never die
                error = f"{type(exc).__name__}: {exc}"
                log.exception("mqtt_task_failed", error=error)
            finally:
                self.connected = False
                self.connected_event.clear()
            wait = delay * random.uniform(0.8, 1.2)  # jitter: herds of daemons spread out
            log.warning("mqtt_reconnecting", error=error, delay_s=round(wait, 3))
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.config.reconnect_max_s)

    async def _connected(self, client: aiomqtt.Client) -> None:
        await client.publish(f"{self.base}/status", b"online", qos=1, retain=True)
        if self.commands is not None:
            await client.subscribe(f"{self.base}/control", qos=1)
            await client.subscribe(f"{self.base}/control/+", qos=1)
        self.connected, self.connects = True, self.connects + 1
        self.connected_event.set()
        log.info("mqtt_connected", host=self.config.host, port=self.config.port, base=self.base)
        tasks = [
            asyncio.create_task(self._drain(client), name="mqtt-drain"),
            asyncio.create_task(self._listen(client), name="mqtt-listen"),
            asyncio.create_task(self._tick(), name="mqtt-tick"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raise the MqttError that ended the connection
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            batch = await self.outbox.take()
            self._inflight = len(batch)
            try:
                await asyncio.gather(
                    *(client.publish(m.topic, m.encoded(), m.qos, m.retain) for m in batch)
                )
            except aiomqtt.MqttError:
                self.outbox.requeue(batch)  # at least once: consumers de-duplicate by id
                raise
            finally:
                self._inflight = 0
            self.published += len(batch)

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Commands in; also how a lost connection is noticed (the iterator raises)."""
        async for message in client.messages:
            if self.commands is None or not isinstance(message.payload, bytes | bytearray):
                continue
            ack = await self.commands(str(message.topic), bytes(message.payload))
            if ack is not None:
                self._put("ack", ack)

    async def _tick(self) -> None:
        """Heartbeat every `heartbeat_s`, stats every `stats_s` (only while connected)."""
        loop = asyncio.get_running_loop()
        next_stats = loop.time()
        while True:
            if self.heartbeat is not None:
                self._heartbeats += 1
                beat = {"id": f"{self.config.instance}:hb:{self._heartbeats}"}
                self._put("heartbeat", {**beat, **self.heartbeat()}, qos=0)
            if loop.time() >= next_stats:
                self._put_stats()
                next_stats = loop.time() + self.config.stats_s
            await asyncio.sleep(min(self.config.heartbeat_s, self.config.stats_s))
