"""run_daemon end to end without a broker: health file, metrics endpoint, sd_notify, stats."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

import titan.cli.ops  # noqa: F401  (registers the commands)
from tests.integration.engine_setup import small_config
from titan.cli.common import app
from titan.config.ops import HealthConfig, MetricsConfig, MqttConfig, OpsConfig
from titan.engine.compose import build_engine
from titan.ops.mqtt import SecretError
from titan.ops.runtime import Daemon


def paced_config(state_dir: Path, **extra: Any) -> Any:
    """~360 intervals paced at ~3 ms each (the run lasts about a second and a half)."""
    settings = {"feed.end": "2025-05-04T22:00:00", "feed.speed": 20_000, "engine.report": "false"}
    return small_config(state_dir, **{**settings, **extra})


def write_config(tmp_path: Path, state_dir: Path) -> str:
    path = tmp_path / "titan.toml"
    path.write_text(f'[runtime]\nstate_dir = "{state_dir}"\n')
    return str(path)


async def scrape(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    head, _, body = response.partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_daemon_serves_metrics_and_health_and_keeps_the_health_file_fresh(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    config = paced_config(state)
    ops = OpsConfig(metrics=MetricsConfig(port=0), health=HealthConfig(write_every_s=0.05))
    engine = build_engine(config)
    daemon = Daemon(engine, config, ops, env={})
    cli, config_path = CliRunner(), write_config(tmp_path, state)
    run = asyncio.create_task(daemon.run(install_signals=False))
    while engine.summary.fills == 0:
        await asyncio.sleep(0.01)
    port = daemon.metrics_port
    assert port is not None and daemon.publisher is None  # no broker configured: no MQTT
    status, text = await scrape(port, "/metrics")
    assert status == 200
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("titan_candles_total", (("symbol", "BTC/USDT"),))] > 200
    assert values[("titan_decision_latency_seconds_count", ())] > 0
    assert values[("titan_up", ())] == 1.0 and ("titan_equity", ()) in values
    status, body = await scrape(port, "/health")
    assert status == 200 and json.loads(body)["ok"] is True

    await asyncio.sleep(0.1)
    first = json.loads((state / "health.json").read_text())
    await asyncio.sleep(0.2)
    second = json.loads((state / "health.json").read_text())
    assert second["intervals"] > first["intervals"]  # rewritten as intervals pass
    assert cli.invoke(app, ["health", "--config", config_path]).exit_code == 0

    summary = await asyncio.wait_for(run, 60)
    final = json.loads((state / "health.json").read_text())
    assert final["status"] == "stopped" and final["intervals"] == summary.intervals
    assert final["trading"]["killed"] is False and final["models"] == list(engine.ensemble.names)
    assert set(final["fusion"]["attention"]) == set(engine.ensemble.names)
    stopped = cli.invoke(app, ["health", "--config", config_path])
    assert stopped.exit_code == 1 and "stopped" in stopped.output


async def test_sd_notify_ready_watchdog_stopping_in_order(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "notify.sock"))
    server.setblocking(False)
    messages: list[str] = []

    async def listen() -> None:  # like systemd: read as they come (the queue is short)
        while True:
            try:
                messages.append(server.recv(4096).decode())
            except BlockingIOError:
                await asyncio.sleep(0.002)

    listener = asyncio.create_task(listen())
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "100000"}
    config = paced_config(tmp_path / "state")
    daemon = Daemon(build_engine(config), config, OpsConfig(), env=env)
    await asyncio.wait_for(daemon.run(install_signals=False), 60)
    await asyncio.sleep(0.05)
    listener.cancel()
    server.close()
    kinds = [m.split("=")[0] for m in messages]
    assert kinds[0] == "READY" and kinds[-1] == "STOPPING"
    assert kinds.count("WATCHDOG") >= 3 and kinds.count("READY") == 1
    assert messages[0] == "READY=1\nSTATUS=online"
    assert "intervals" in messages[1] and messages[1].startswith("WATCHDOG=1\nSTATUS=")


async def test_sigterm_notifies_stopping_at_once_then_checkpoints_the_last_interval(
    tmp_path: Path,
) -> None:
    """SIGTERM mid-run: STOPPING=1 reaches systemd while the engine is still running, the
    engine stops early and its final checkpoint is the last interval it processed."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "notify.sock"))
    server.setblocking(False)
    config = paced_config(tmp_path / "state")
    engine = build_engine(config)
    daemon = Daemon(engine, config, OpsConfig(), env={"NOTIFY_SOCKET": server.getsockname()})
    run = asyncio.create_task(daemon.run(install_signals=True))
    while engine.summary.intervals < 50:
        await asyncio.sleep(0.005)
    os.kill(os.getpid(), signal.SIGTERM)
    messages: list[str] = []
    deadline = asyncio.get_running_loop().time() + 10
    while "STOPPING=1\nSTATUS=stopping" not in messages and not run.done():
        if asyncio.get_running_loop().time() > deadline:
            break
        try:
            messages.append(server.recv(4096).decode())
        except BlockingIOError:
            await asyncio.sleep(0.001)
    stopping_while_running = not run.done()
    summary = await asyncio.wait_for(run, 30)
    server.close()
    assert messages == ["READY=1\nSTATUS=online", "STOPPING=1\nSTATUS=stopping"]
    assert stopping_while_running
    assert not summary.finished and summary.intervals < 360  # stopped early, not at the end
    newest = max((tmp_path / "state" / "checkpoints").glob("ckpt-*"))
    assert newest.name == f"ckpt-{summary.last_ts // 60_000:012d}"


async def test_titan_stats_reads_the_persisted_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = paced_config(state, **{"engine.stats_every": 60, "feed.speed": 0})
    engine = build_engine(config)
    summary = await Daemon(engine, config, OpsConfig(), env={}).run(install_signals=False)
    engine.ledger.close()
    config_path = write_config(tmp_path, state)

    result = CliRunner().invoke(app, ["stats", "--config", config_path, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    btc = data["ledger"]["symbols"]["BTC/USDT"]
    assert btc["decisions"] > 300 and btc["last_candle_ts"] == summary.last_ts
    assert data["ledger"]["fusion"]["samples_seen"] > 0
    assert set(data["ledger"]["fusion"]["attention"]) == set(engine.ensemble.names)
    assert data["checkpoints"] and data["checkpoints"][0]["fusion_sha256"]
    assert data["health"]["status"] == "stopped"

    table = CliRunner().invoke(app, ["stats", "--config", config_path], env={"COLUMNS": "150"})
    assert table.exit_code == 0, table.output
    for expected in ("BTC/USDT", "ETH/USDT", "samples_seen", "attention", "ckpt-", "PnL"):
        assert expected in table.output


async def test_feed_health_provider_reaches_health_file_stats_and_metrics(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = paced_config(state)
    feed = {"connected": True, "reconnects": 2, "symbols": {"BTC/USDT": {"age_s": 1.0}}}
    ops = OpsConfig(metrics=MetricsConfig(port=0))
    engine = build_engine(config)
    daemon = Daemon(engine, config, ops, env={}, feed_health=lambda: feed)
    run = asyncio.create_task(daemon.run(install_signals=False))
    while daemon.metrics_port is None or engine.summary.intervals < 10:
        await asyncio.sleep(0.01)
    _, text = await scrape(daemon.metrics_port, "/metrics")
    assert "titan_feed_reconnects 2.0" in text and "titan_feed_connected 1.0" in text
    await asyncio.wait_for(run, 60)
    assert json.loads((state / "health.json").read_text())["feed"] == feed
    result = CliRunner().invoke(app, ["stats", "--config", write_config(tmp_path, state)])
    assert result.exit_code == 0 and "reconnects" in result.output


async def test_a_secret_file_others_can_read_stops_the_start(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("shared-command-secret")
    secret.chmod(0o644)
    config = paced_config(tmp_path / "state")
    mqtt = MqttConfig(host="127.0.0.1", port=1, secret_file=secret, flush_timeout_s=0.1)
    engine = build_engine(config)
    with pytest.raises(SecretError, match="chmod 600"):
        await Daemon(engine, config, OpsConfig(mqtt=mqtt), env={}).run(install_signals=False)
    assert engine.summary.intervals == 0  # refused before trading
    health = json.loads((tmp_path / "state" / "health.json").read_text())
    assert health["status"] == "offline"
