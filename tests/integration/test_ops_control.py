"""Control over MQTT, end to end: commands from a broker client change a running engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.integration.engine_setup import small_config
from tests.unit.ops.mqtt_support import (
    SECRET,
    Mosquitto,
    Recorder,
    own_broker,
    recorder,
    send,
)
from titan.clock import LiveClock
from titan.config.ops import MqttConfig, OpsConfig
from titan.engine.compose import build_engine
from titan.engine.engine import Engine
from titan.ops.logging import configure_logging, current_log_level
from titan.ops.runtime import Daemon


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    yield from own_broker(tmp_path)


BASE = "titan/ctl"


class Operator:
    """Sends signed commands and waits for their acks."""

    def __init__(self, port: int, rec: Recorder) -> None:
        self.port, self.rec, self.sent = port, rec, 0

    async def command(self, name: str, secret: str = SECRET, **fields: Any) -> dict[str, Any]:
        self.sent += 1
        body = {"secret": secret, "id": f"op-{self.sent}", "ts": LiveClock().now_ms(), **fields}
        await send(self.port, f"{BASE}/control/{name}", json.dumps(body).encode())
        await self.rec.wait_for(lambda: len(self.rec.on(f"{BASE}/ack")) >= self.sent)
        ack: dict[str, Any] = json.loads(self.rec.on(f"{BASE}/ack")[-1].payload)
        assert ack["id"] == body["id"]
        return ack


async def intervals_pass(engine: Engine, count: int) -> int:
    """Wait until `count` more intervals are processed; the last ts then."""
    target = engine.summary.intervals + count
    while engine.summary.intervals < target:
        await asyncio.sleep(0.005)
    return engine.last_ts or 0


def fills_between(engine: Engine, after: int, until: int) -> int:
    fills = engine.ledger.frame("fills")
    return fills.filter((pl.col("ts") > after) & (pl.col("ts") <= until)).height


def predictions_between(engine: Engine, after: int, until: int) -> int:
    predictions = engine.ledger.frame("predictions")
    return predictions.filter((pl.col("ts") > after) & (pl.col("ts") <= until)).height


async def test_pause_resume_kill_checkpoint_and_log_level_take_effect(
    tmp_path: Path, broker: Mosquitto
) -> None:
    configure_logging("info", "json", open(tmp_path / "log.jsonl", "w"))  # noqa: SIM115
    config = small_config(
        tmp_path / "state",
        **{"engine.max_batch": 1, "feed.speed": 30_000, "engine.report": "false"},
    )
    engine = build_engine(config)
    mqtt = MqttConfig(host="127.0.0.1", port=broker.port, instance="ctl")
    daemon = Daemon(engine, config, OpsConfig(mqtt=mqtt), env={"TITAN_MQTT_SECRET": SECRET})
    async with recorder(broker.port, f"{BASE}/#") as rec:
        run = asyncio.create_task(daemon.run(install_signals=False))
        operator = Operator(broker.port, rec)
        await rec.wait_for(lambda: engine.summary.fills > 0, timeout=60)  # trading has begun

        assert (await operator.command("pause"))["ok"]
        paused_at = engine.last_ts or 0
        resumed_from = await intervals_pass(engine, 150)
        assert (await operator.command("resume"))["ok"]
        await intervals_pass(engine, 150)

        rejected = await operator.command("kill", secret="not-the-secret")
        assert rejected["ok"] is False and not engine.trader.killed

        checkpoints = set((tmp_path / "state" / "checkpoints").iterdir())
        assert (await operator.command("checkpoint"))["ok"]
        await intervals_pass(engine, 2)
        assert set((tmp_path / "state" / "checkpoints").iterdir()) - checkpoints

        assert (await operator.command("log_level", level="debug"))["ok"]
        assert current_log_level() == "debug"

        assert (await operator.command("kill", reason="drill"))["ok"]
        killed_at = engine.last_ts or 0
        assert engine.trader.killed
        stopped_at = await intervals_pass(engine, 100)
        engine.request_stop()
        await asyncio.wait_for(run, 60)

    # While paused: decisions went on, no order was placed.
    assert predictions_between(engine, paused_at, resumed_from) >= 290
    assert fills_between(engine, paused_at, resumed_from) == 0
    # After resume it traded again; after the kill it never did.
    assert fills_between(engine, resumed_from, killed_at) > 0
    assert fills_between(engine, killed_at, stopped_at) == 0
    log = (tmp_path / "log.jsonl").read_text()
    assert SECRET not in log and "not-the-secret" not in log
    events = [json.loads(line) for line in log.splitlines()]
    assert {"kill_switch", "mqtt_command", "mqtt_command_rejected"} <= {e["event"] for e in events}
