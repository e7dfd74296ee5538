"""MQTT against a real mosquitto: every topic of a daemon run, round trip, payload schemas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_setup import small_config
from tests.unit.ops.mqtt_support import (
    SECRET,
    Mosquitto,
    own_broker,
    recorder,
    retained,
    send,
)
from titan.clock import LiveClock
from titan.config.ops import MqttConfig, OpsConfig
from titan.engine.compose import build_engine
from titan.ops.runtime import Daemon


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    yield from own_broker(tmp_path)


BASE = "titan/rt"


def short_run(state_dir: Path) -> Any:
    """~360 one-minute intervals paced at ~3 ms each; trading starts after ~240."""
    return small_config(
        state_dir,
        **{
            "feed.end": "2025-05-04T22:00:00",
            "feed.speed": 20_000,
            "engine.report": "false",
            "trading.flat_at_end": "false",
        },
    )


def payloads(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in messages]


async def test_every_topic_round_trips_through_the_broker(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = short_run(tmp_path / "state")
    mqtt = MqttConfig(
        host="127.0.0.1", port=broker.port, instance="rt", heartbeat_s=0.05, stats_s=0.2
    )
    engine = build_engine(config)
    daemon = Daemon(engine, config, OpsConfig(mqtt=mqtt), env={"TITAN_MQTT_SECRET": SECRET})
    async with recorder(broker.port, f"{BASE}/#") as rec:
        run = asyncio.create_task(daemon.run(install_signals=False))
        await rec.wait_for(lambda: bool(rec.on(f"{BASE}/status")))
        command = {"command": "checkpoint", "secret": SECRET, "id": "c-1"}
        await send(broker.port, f"{BASE}/control", json.dumps(command).encode())
        await rec.wait_for(lambda: bool(rec.on(f"{BASE}/ack")))
        summary = await asyncio.wait_for(run, 60)
        await rec.wait_for(lambda: rec.on(f"{BASE}/status")[-1].payload == b"stopped")

    assert summary.finished and summary.fills > 0
    assert [m.payload for m in rec.on(f"{BASE}/status")] == [b"online", b"stopped"]

    signals = payloads(rec.under(f"{BASE}/signal/"))
    assert len(signals) == summary.decisions
    assert len({s["id"] for s in signals}) == len(signals)  # ids de-duplicate
    assert all(m.qos == 1 and not m.retain for m in rec.under(f"{BASE}/signal/"))
    first = signals[0]
    assert set(first) >= {"id", "ts", "sent_at", "symbol", "action", "target", "prob_up"}
    assert {m.topic.removeprefix(f"{BASE}/signal/") for m in rec.under(f"{BASE}/signal/")} == {
        "BTC/USDT",
        "ETH/USDT",
    }

    decisions = payloads(rec.under(f"{BASE}/decision/"))
    assert len(decisions) == summary.decisions
    assert set(decisions[-1]["models"]) == set(engine.ensemble.names)

    fills = payloads(rec.under(f"{BASE}/fill/"))
    ledger_fills = engine.ledger.frame("fills")
    assert sorted(f["id"] for f in fills) == sorted(ledger_fills["order_id"].to_list())

    beats = rec.on(f"{BASE}/heartbeat")
    assert beats and all(m.qos == 0 for m in beats)
    assert payloads(beats)[-1]["instance"] == "rt"

    stats = payloads(rec.on(f"{BASE}/stats"))
    assert stats and stats[-1]["intervals"] == summary.intervals  # final stats at shutdown
    assert set(stats[-1]["symbols"]) == {"BTC/USDT", "ETH/USDT"}

    (ack,) = payloads(rec.on(f"{BASE}/ack"))
    assert (ack["id"], ack["command"], ack["ok"]) == ("c-1", "checkpoint", True)

    # A newcomer sees the retained final status and stats.
    assert await retained(broker.port, f"{BASE}/status") == b"stopped"
    late_stats = await retained(broker.port, f"{BASE}/stats")
    assert late_stats is not None and json.loads(late_stats)["status"] == "stopped"


async def test_titan_runs_without_a_broker_and_counts_what_it_drops(tmp_path: Path) -> None:
    """A configured but unreachable broker never stops trading: drops are counted."""
    config = short_run(tmp_path / "state")
    from tests.unit.ops.mqtt_support import free_port

    mqtt = MqttConfig(
        host="127.0.0.1",
        port=free_port(),
        queue_size=100,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        flush_timeout_s=0.2,
    )
    engine = build_engine(config)
    daemon = Daemon(engine, config, OpsConfig(mqtt=mqtt), env={})
    started = LiveClock().now_ms()
    summary = await asyncio.wait_for(daemon.run(install_signals=False), 60)
    assert summary.finished and summary.decisions > 600
    publisher = daemon.publisher
    assert publisher is not None and publisher.connects == 0
    assert publisher.outbox.dropped >= 2 * summary.decisions - 100
    assert (LiveClock().now_ms() - started) / 1000 < 30
