"""Broker authentication: username/password with ACLs, the command secret, and TLS."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.unit.ops.mqtt_support import SECRET, Mosquitto, recorder, send
from titan.config.ops import MqttConfig, MqttTlsConfig
from titan.ops.mqtt import MqttPublisher
from titan.ops.runtime import Controller

USERS = {"titan": "daemon-pass-1", "operator": "operator-pass-2", "viewer": "viewer-pass-3"}
ACL = """
user titan
topic readwrite titan/#

user operator
topic write titan/+/control/#
topic write titan/+/control
topic read titan/#

user viewer
topic read titan/#
"""


class Engine:
    """Just the controls a Controller drives."""

    def __init__(self) -> None:
        self.paused = False

    def pause_trading(self) -> None:
        self.paused = True

    def resume_trading(self) -> None:
        self.paused = False

    async def kill(self, reason: str) -> None:
        raise AssertionError("not used")

    def request_checkpoint(self) -> None: ...

    def request_stop(self) -> None: ...


def password_broker(tmp_path: Path) -> Mosquitto:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed")
    directory = tmp_path / "broker"
    directory.mkdir()
    passwords = directory / "passwd"
    for i, (user, password) in enumerate(USERS.items()):
        flags = ["-b", "-c"] if i == 0 else ["-b"]
        subprocess.run(["mosquitto_passwd", *flags, str(passwords), user, password], check=True)
    (directory / "acl").write_text(ACL)
    extra = f"allow_anonymous false\npassword_file {passwords}\nacl_file {directory / 'acl'}\n"
    return Mosquitto(directory, extra).start()


@asynccontextmanager
async def publishing(publisher: MqttPublisher) -> AsyncIterator[MqttPublisher]:
    publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop(timeout_s=1.0)


async def test_password_login_acls_and_command_secret(tmp_path: Path) -> None:
    broker = password_broker(tmp_path)
    engine = Engine()
    config = MqttConfig(host="127.0.0.1", port=broker.port, instance="sec", username="titan")
    publisher = MqttPublisher(
        config, password=USERS["titan"], commands=Controller(engine, SECRET, 300)
    )
    command = json.dumps({"command": "pause", "secret": SECRET}).encode()
    try:
        async with (
            publishing(publisher),
            recorder(broker.port, "titan/#", username="viewer", password=USERS["viewer"]) as rec,
        ):
            await asyncio.wait_for(publisher.connected_event.wait(), 10)
            # A reader holding the secret still cannot command: the broker drops its publish.
            await send(broker.port, "titan/sec/control", command, username="viewer",
                       password=USERS["viewer"])  # fmt: skip
            await asyncio.sleep(0.3)
            assert not engine.paused and not rec.on("titan/sec/ack")
            # The operator can; the secret is checked too.
            await send(broker.port, "titan/sec/control", command, username="operator",
                       password=USERS["operator"])  # fmt: skip
            await rec.wait_for(lambda: bool(rec.on("titan/sec/ack")))
            assert engine.paused
            assert json.loads(rec.on("titan/sec/ack")[0].payload)["ok"] is True
            assert rec.on("titan/sec/status")[0].payload == b"online"
    finally:
        broker.stop()


async def test_wrong_password_never_connects_and_never_raises(tmp_path: Path) -> None:
    broker = password_broker(tmp_path)
    config = MqttConfig(host="127.0.0.1", port=broker.port, username="titan",
                        reconnect_min_s=0.05, reconnect_max_s=0.1)  # fmt: skip
    publisher = MqttPublisher(config, password="wrong")
    try:
        async with publishing(publisher):
            await asyncio.sleep(0.5)
            assert not publisher.connected and publisher.connects == 0
    finally:
        broker.stop()


def make_certificates(directory: Path) -> None:
    """A throw-away CA and a server certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "1", "-subj", "/CN=titan-test-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost")  # fmt: skip
    (directory / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext")  # fmt: skip


async def test_tls_connection_verifies_the_broker_certificate(tmp_path: Path) -> None:
    directory = tmp_path / "broker"
    directory.mkdir()
    make_certificates(directory)
    extra = (
        f"cafile {directory / 'ca.crt'}\ncertfile {directory / 'server.crt'}\n"
        f"keyfile {directory / 'server.key'}\n"
    )
    broker = Mosquitto(directory, extra).start()
    tls = MqttTlsConfig(enabled=True, ca_file=directory / "ca.crt")
    trusted = MqttPublisher(MqttConfig(host="127.0.0.1", port=broker.port, tls=tls))
    untrusted = MqttPublisher(
        MqttConfig(
            host="127.0.0.1",
            port=broker.port,
            instance="untrusted",
            tls=MqttTlsConfig(enabled=True),  # system CAs: our test CA is unknown
            reconnect_min_s=0.05,
        )
    )
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    try:
        async with (
            recorder(broker.port, "titan/#", tls_context=context) as rec,
            publishing(trusted),
            publishing(untrusted),
        ):
            await asyncio.wait_for(trusted.connected_event.wait(), 10)
            trusted.publish("probe", {"hello": "tls"})
            await rec.wait_for(lambda: bool(rec.on("titan/default/probe")))
            await asyncio.sleep(0.3)
            assert not untrusted.connected and untrusted.connects == 0
    finally:
        broker.stop()
