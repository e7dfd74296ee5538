"""The health file and `titan health`: fresh while intervals flow, stale or stopped otherwise."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import titan.cli.ops  # noqa: F401  (registers the commands)
from titan.cli.common import app
from titan.clock import LiveClock
from titan.ops.health import HealthWriter, default_max_age_s, judge, write_json_atomic

NOW = 1_800_000_000_000


def document(status: str = "online", age_s: float = 5.0, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "started_at": NOW - 3_600_000,
        "last_interval_at": NOW - int(age_s * 1000),
        "max_age_s": 240.0,
        **extra,
    }


def test_default_max_age_is_three_intervals_plus_a_minute() -> None:
    assert default_max_age_s("1m") == 240.0
    assert default_max_age_s("1h") == 3 * 3600 + 60


@pytest.mark.parametrize(
    ("doc", "limit", "ok", "reason"),
    [
        (document(age_s=5), None, True, "ok"),
        (document(age_s=300), None, False, "stale"),  # uses the file's own max_age_s
        (document(age_s=300), 600.0, True, "ok"),  # an explicit limit wins
        (document(status="stopped", age_s=1), None, False, "daemon stopped"),
        (document(status="offline", age_s=1), None, False, "daemon offline"),
        (None, 60.0, False, "no health file"),
        ({"status": "starting", "started_at": NOW - 1000, "max_age_s": 60}, None, True, "ok"),
    ],
)
def test_judge(doc: dict[str, Any] | None, limit: float | None, ok: bool, reason: str) -> None:
    verdict = judge(doc, NOW, limit)
    assert verdict.ok is ok and reason in verdict.reason


def test_atomic_write_leaves_no_temporary_files_and_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    write_json_atomic(path, {"loss": float("nan"), "n": 1})
    assert json.loads(path.read_text()) == {"loss": None, "n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]


async def test_writer_rewrites_only_after_a_change(tmp_path: Path) -> None:
    version = [0]
    writer = HealthWriter(
        tmp_path / "health.json",
        lambda: {"status": "online", "v": version[0]},
        lambda: version[0],
        every_s=0.01,
        max_age_s=60.0,
    )
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0.05)
    assert writer.writes == 1
    version[0] = 1
    await asyncio.sleep(0.05)
    task.cancel()
    assert writer.writes == 2
    assert json.loads((tmp_path / "health.json").read_text()) == {
        "status": "online",
        "v": 1,
        "max_age_s": 60.0,
    }


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "titan.toml"
    path.write_text(f'[runtime]\nstate_dir = "{tmp_path / "state"}"\n')
    return path


def write_health(tmp_path: Path, **fields: Any) -> None:
    now = LiveClock().now_ms()
    base = {"status": "online", "started_at": now - 10_000, "last_interval_at": now - 1000}
    write_json_atomic(tmp_path / "state" / "health.json", {**base, "max_age_s": 240, **fields})


def test_titan_health_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    config = str(config_file(tmp_path))
    missing = runner.invoke(app, ["health", "--config", config])
    assert missing.exit_code == 2 and "no health file" in missing.output
    write_health(tmp_path)
    fresh = runner.invoke(app, ["health", "--config", config])
    assert fresh.exit_code == 0 and fresh.output.startswith("healthy")
    write_health(tmp_path, last_interval_at=LiveClock().now_ms() - 600_000)
    stale = runner.invoke(app, ["health", "--config", config, "--json"])
    assert stale.exit_code == 1 and json.loads(stale.output)["ok"] is False
    assert runner.invoke(app, ["health", "--config", config, "--max-age", "900"]).exit_code == 0
    write_health(tmp_path, status="stopped")
    assert runner.invoke(app, ["health", "--config", config]).exit_code == 1
