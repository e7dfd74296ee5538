"""MQTT parts without a broker: the bounded outbox, payload schemas, commands, secrets."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from titan.config.ops import MqttConfig
from titan.engine.ensemble import Decision, Inputs
from titan.ops.logging import configure_logging, current_log_level, redact_text
from titan.ops.mqtt import Message, MqttPublisher, Outbox, SecretError, read_secret
from titan.ops.runtime import Controller
from titan.ops.stats import decision_payload, fill_payload, signal_payload
from titan.trading.types import Fill

SECRET = "correct-horse-battery"
NOW = 1_800_000_000_000


def decision(symbol: str = "BTC/USDT", ts: int = 1_746_000_000_000) -> Decision:
    inputs = Inputs((0.6, 0.4), (0.2, 0.2), (0.1,))
    return Decision(symbol, ts, 95_000.0, 0.58, 0.16, 0.5, True, 0.2, inputs, (0.7, 0.3))


def message(i: int) -> Message:
    return Message(f"t/{i}", str(i).encode())


async def test_outbox_drops_the_oldest_counts_and_logs_once_per_window() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    clock = [0.0]
    outbox = Outbox(3, clock=lambda: clock[0])
    for i in range(6):
        outbox.put(message(i))
    assert outbox.dropped == 3 and len(outbox) == 3
    assert [m.topic for m in await outbox.take()] == ["t/3", "t/4", "t/5"]
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["event"], e["dropped"], e["total"]) for e in events] == [("mqtt_dropped", 1, 1)]
    clock[0] = 11.0
    for i in range(4):
        outbox.put(message(i))
    last = json.loads(stream.getvalue().splitlines()[-1])
    assert (last["dropped"], last["total"]) == (3, 4)  # the two silent drops are reported


async def test_outbox_requeue_puts_unsent_messages_first_within_the_bound() -> None:
    outbox = Outbox(4)
    for i in range(3):
        outbox.put(message(i))
    batch = await outbox.take(limit=2)
    outbox.put(message(3))
    outbox.put(message(4))
    outbox.requeue(batch)  # room for one of the two
    assert outbox.dropped == 1
    assert [m.topic for m in await outbox.take()] == ["t/1", "t/2", "t/3", "t/4"]


async def test_take_waits_for_the_first_message() -> None:
    outbox = Outbox(4)
    waiter = asyncio.create_task(outbox.take())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    outbox.put(message(1))
    assert [m.topic for m in await asyncio.wait_for(waiter, 1.0)] == ["t/1"]


def test_signal_and_decision_payloads_carry_id_timestamp_and_detail() -> None:
    d = decision()
    signal = signal_payload("eu-1", d, NOW)
    assert signal["id"] == "eu-1:BTC/USDT:1746000000000"  # stable across restarts: de-dup key
    assert (signal["ts"], signal["sent_at"], signal["action"]) == (d.ts, NOW, "long")
    detail = decision_payload("eu-1", d, ("trend", "ml"), NOW)
    assert detail["id"] == signal["id"]
    assert detail["models"] == {
        "trend": {"prob_up": 0.6, "confidence": 0.2},
        "ml": {"prob_up": 0.4, "confidence": 0.2},
    }
    assert detail["attention"] == {"trend": 0.7, "ml": 0.3} and detail["fused"] is True


def test_fill_payload_uses_the_order_id() -> None:
    fill = Fill("BTC/USDT-1-0", "BTC/USDT", 1, "buy", 0.5, 100.0, 0.02)
    payload = fill_payload("eu-1", fill, NOW)
    assert payload["id"] == "BTC/USDT-1-0" and payload["notional"] == 50.0
    assert (payload["side"], payload["quantity"], payload["sent_at"]) == ("buy", 0.5, NOW)


def test_publisher_hooks_only_queue_and_nan_becomes_null() -> None:
    publisher = MqttPublisher(MqttConfig(host="127.0.0.1", instance="x"), model_names=("a", "b"))
    nan_decision = Decision(
        "ETH/USDT", 1, 1.0, float("nan"), 0.0, 0.5, False, 0.0, Inputs((0.5, 0.5), (0, 0), ()), None
    )
    publisher.on_decisions(1, [decision(), nan_decision])
    publisher.on_fills([Fill("o", "BTC/USDT", 1, "sell", 1.0, 1.0, 0.0)])
    topics = [m.topic for m in publisher.outbox._items]
    assert topics == [
        "titan/x/signal/BTC/USDT",
        "titan/x/decision/BTC/USDT",
        "titan/x/signal/ETH/USDT",
        "titan/x/decision/ETH/USDT",
        "titan/x/fill/BTC/USDT",
    ]
    assert json.loads(publisher.outbox._items[2].encoded())["prob_up"] is None


class FakeEngine:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_trading(self) -> None:
        self.calls.append("pause")

    def resume_trading(self) -> None:
        self.calls.append("resume")

    async def kill(self, reason: str) -> None:
        self.calls.append(f"kill:{reason}")

    def request_checkpoint(self) -> None:
        self.calls.append("checkpoint")

    def request_stop(self) -> None:
        self.calls.append("stop")


class FixedClock:
    def now_ms(self) -> int:
        return NOW


def controller(engine: FakeEngine, levels: list[str] | None = None) -> Controller:
    return Controller(
        engine,
        SECRET,
        max_age_s=60,
        set_level=(levels if levels is not None else []).append,
        clock=FixedClock(),  # type: ignore[arg-type]
    )


def command(**fields: Any) -> bytes:
    return json.dumps({"secret": SECRET, "ts": NOW, **fields}).encode()


async def test_every_command_reaches_the_engine() -> None:
    engine, levels = FakeEngine(), []
    control = controller(engine, levels)
    base = "titan/x/control"
    acks = [
        await control(base, command(command="pause", id="1")),
        await control(f"{base}/resume", command(id="2")),
        await control(base, command(command="kill", id="3", reason="operator")),
        await control(f"{base}/checkpoint", command(id="4")),
        await control(base, command(command="log_level", id="5", level="debug")),
    ]
    assert engine.calls == ["pause", "resume", "kill:operator", "checkpoint"]
    assert levels == ["debug"]
    assert [a["ok"] for a in acks] == [True] * 5
    assert [a["command"] for a in acks] == ["pause", "resume", "kill", "checkpoint", "log_level"]


@pytest.mark.parametrize(
    ("topic_suffix", "payload", "error"),
    [
        ("", command(command="pause", secret="wrong-secret"), "unauthorised"),
        ("", json.dumps({"command": "pause"}).encode(), "unauthorised"),
        ("", b"not json", "not JSON"),
        ("", b"[1, 2]", "JSON object"),
        ("", b"{" + b" " * 5000 + b"}", "too large"),
        ("", command(command="reboot"), "unknown command"),
        ("/pause", command(command="kill"), "disagree"),
        ("", command(command="pause", ts=NOW - 61_000), "stale"),
        ("", command(command="pause", ts="yesterday"), "epoch"),
        ("", command(command="log_level", level="trace"), "level must be"),
    ],
)
async def test_bad_commands_are_rejected_and_not_applied(
    topic_suffix: str, payload: bytes, error: str
) -> None:
    engine = FakeEngine()
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    control = controller(engine)
    ack = await control(f"titan/x/control{topic_suffix}", payload)
    assert ack["ok"] is False and error in ack["error"]
    assert engine.calls == [] and control.rejected == 1
    assert SECRET not in stream.getvalue() and "mqtt_command_rejected" in stream.getvalue()


async def test_a_repeated_command_id_is_acknowledged_but_applied_once() -> None:
    engine = FakeEngine()
    control = controller(engine)
    first = await control("titan/x/control", command(command="pause", id="same"))
    again = await control("titan/x/control", command(command="pause", id="same"))
    assert engine.calls == ["pause"]
    assert first["ok"] and again["ok"] and again["duplicate"] is True


async def test_a_failing_command_is_acknowledged_as_failed_not_raised() -> None:
    class Broken(FakeEngine):
        async def kill(self, reason: str) -> None:
            raise ConnectionError("exchange unreachable")

    ack = await controller(Broken())("titan/x/control/kill", command(id="k"))
    assert ack["ok"] is False and "exchange unreachable" in ack["error"]


def test_secrets_come_from_env_or_a_private_file_and_are_redacted(tmp_path: Path) -> None:
    assert read_secret("TITAN_MQTT_SECRET", None, {"TITAN_MQTT_SECRET": "from-env-123"}) == (
        "from-env-123"
    )
    assert read_secret("TITAN_MQTT_SECRET", None, {}) is None
    file = tmp_path / "secret"
    file.write_text("from-file-456\n")
    os.chmod(file, 0o600)
    assert read_secret("X", file, {"X": "ignored"}) == "from-file-456"
    assert redact_text("token from-file-456 and from-env-123") == "token *** and ***"
    os.chmod(file, 0o640)
    with pytest.raises(SecretError, match="chmod 600"):
        read_secret("X", file, {})


def test_log_level_command_default_changes_the_process_level() -> None:
    configure_logging("info", "json", io.StringIO())
    control = Controller(FakeEngine(), SECRET, 60, clock=FixedClock())  # type: ignore[arg-type]
    asyncio.run(control("t/control/log_level", command(level="warning")))
    assert current_log_level() == "warning"
