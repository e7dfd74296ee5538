"""MQTT faults with brokers of our own: restart mid-run, and the last will on kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.engine_setup import small_config
from tests.unit.ops.mqtt_support import SECRET, Mosquitto, recorder, retained
from titan.config import TitanConfig
from titan.config.ops import MqttConfig, OpsConfig
from titan.engine.compose import build_engine
from titan.ops.runtime import Daemon

REPO = Path(__file__).resolve().parents[2]


async def test_broker_restart_mid_run_trading_continues_and_publishing_resumes(
    tmp_path: Path,
) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    config = small_config(
        tmp_path / "state",
        **{"feed.end": "2025-05-05T06:00:00", "feed.speed": 12_000, "engine.report": "false"},
    )  # ~840 intervals at ~5 ms
    mqtt = MqttConfig(
        host="127.0.0.1",
        port=broker.port,
        instance="restart",
        queue_size=200,
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
        heartbeat_s=0.1,
    )
    engine = build_engine(config)
    daemon = Daemon(engine, config, OpsConfig(mqtt=mqtt), env={"TITAN_MQTT_SECRET": SECRET})
    run = asyncio.create_task(daemon.run(install_signals=False))
    try:
        while daemon.publisher is None or not daemon.publisher.connected:
            await asyncio.sleep(0.01)
        publisher = daemon.publisher
        broker.stop()
        while publisher.connected:
            await asyncio.sleep(0.01)
        down_at = engine.summary.intervals
        await asyncio.sleep(1.0)
        assert engine.summary.intervals > down_at + 50  # the daemon kept trading
        assert publisher.outbox.dropped > 0  # the bounded queue overflowed: counted
        broker.start()
        async with recorder(broker.port, "titan/restart/#") as rec:
            await rec.wait_for(lambda: publisher.connected, timeout=10)
            resumed_at = engine.last_ts or 0
            await rec.wait_for(
                lambda: any(
                    json.loads(m.payload)["ts"] > resumed_at
                    for m in rec.under("titan/restart/signal/")
                ),
                timeout=10,
            )
        engine.request_stop()
        await asyncio.wait_for(run, 60)
        assert publisher.connects >= 2
        assert await retained(broker.port, "titan/restart/status") == b"stopped"
    finally:
        run.cancel()
        broker.stop()


RUNNER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from tests.integration.engine_setup import small_config
    from titan.config.ops import MqttConfig, OpsConfig
    from titan.engine.compose import build_engine
    from titan.ops.runtime import run_daemon

    config = small_config(Path({state!r}), **{{"feed.speed": 3000, "engine.report": "false"}})
    ops = OpsConfig(mqtt=MqttConfig(host="127.0.0.1", port={port}, instance="k9"))
    asyncio.run(run_daemon(build_engine(config), config, ops=ops))
    """
)


async def wait_online_then_kill(process: subprocess.Popen[bytes], port: int, base: str) -> None:
    async with recorder(port, f"{base}/#") as rec:
        try:
            await rec.wait_for(lambda: bool(rec.under(f"{base}/signal/")), timeout=60)
            assert rec.on(f"{base}/status")[0].payload == b"online"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        await rec.wait_for(lambda: rec.on(f"{base}/status")[-1].payload == b"offline", 10)


async def test_last_will_marks_a_kill_minus_nine_daemon_offline(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    script = RUNNER.format(repo=str(REPO), state=str(tmp_path / "state"), port=broker.port)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        await wait_online_then_kill(process, broker.port, "titan/k9")
        assert await retained(broker.port, "titan/k9/status") == b"offline"
    finally:
        if process.poll() is None:
            process.kill()
        broker.stop()


def cli_wired() -> bool:
    run_source = (REPO / "titan" / "cli" / "run.py").read_text()
    return "ops" in TitanConfig.model_fields and "run_daemon" in run_source


@pytest.mark.skipif(not cli_wired(), reason="TitanConfig.ops / run_daemon not wired into titan run")
async def test_titan_run_subprocess_publishes_online_and_its_will_on_kill_minus_nine(
    tmp_path: Path,
) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    state = tmp_path / "state"
    config = tmp_path / "titan.toml"
    config.write_text(
        f'[runtime]\nstate_dir = "{state}"\n[data]\nstore = "{REPO / "backtests" / "data"}"\n'
        '[feed]\nspeed = 3000.0\nstart = "2025-05-04T16:00:00"\n'
        "[engine]\nreport = false\n[models]\nmin_train = 400\n"
        f'[ops.mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ninstance = "cli"\n'
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "titan", "run", "--config", str(config)]
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        await wait_online_then_kill(process, broker.port, "titan/cli")
        assert await retained(broker.port, "titan/cli/status") == b"offline"
    finally:
        if process.poll() is None:
            process.kill()
        broker.stop()
