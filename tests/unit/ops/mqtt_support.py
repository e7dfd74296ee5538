"""Test support: a private mosquitto broker on a free port, and a recording MQTT client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Mosquitto:
    """A mosquitto process of our own (tests that stop or restart a broker need one)."""

    def __init__(self, directory: Path, extra: str = "", port: int | None = None) -> None:
        if not Path(MOSQUITTO).exists():
            pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
        self.directory, self.extra = directory, extra
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def config_text(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.directory}/",
            f"log_dest file {self.directory}/mosquitto.log",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if "allow_anonymous" not in self.extra:
            lines.append("allow_anonymous true")
        return "\n".join([*lines, self.extra]) + "\n"

    def start(self) -> Mosquitto:
        config = self.directory / "mosquitto.conf"
        config.write_text(self.config_text())
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "mosquitto.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mosquitto did not start on {self.port}: {log}")
            time.sleep(0.02)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None


def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Body of a `broker` fixture: a fresh mosquitto for one test."""
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class Recorder:
    """Subscribes to `pattern` and keeps every message; `wait_for` polls a predicate."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[Received] = []

    async def _collect(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.messages.append(Received(str(message.topic), payload, message.retain, message.qos))

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    def under(self, prefix: str) -> list[Received]:
        return [m for m in self.messages if m.topic.startswith(prefix)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                topics = sorted({m.topic for m in self.messages})
                raise AssertionError(f"condition not met within {timeout}s; topics: {topics}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def recorder(port: int, pattern: str, **kwargs: object) -> AsyncIterator[Recorder]:
    async with aiomqtt.Client("127.0.0.1", port, **kwargs) as client:  # type: ignore[arg-type]
        await client.subscribe(pattern, qos=1)
        rec = Recorder(client)
        task = asyncio.create_task(rec._collect())
        try:
            yield rec
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


SECRET = "test-command-secret-0123"


async def send(port: int, topic: str, payload: bytes, **kwargs: object) -> None:
    """Publish one QoS 1 message from a separate client."""
    async with aiomqtt.Client("127.0.0.1", port, **kwargs) as client:  # type: ignore[arg-type]
        await client.publish(topic, payload, qos=1)


async def retained(port: int, topic: str, timeout: float = 5.0) -> bytes | None:
    """The retained message on `topic` as a new subscriber sees it (None if none arrives)."""
    async with recorder(port, topic) as rec:
        try:
            await rec.wait_for(lambda: bool(rec.messages), timeout)
        except AssertionError:
            return None
        return rec.messages[0].payload if rec.messages[0].retain else None
