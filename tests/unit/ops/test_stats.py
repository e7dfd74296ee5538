"""Stats: the live snapshot (observer) and the persisted view `titan stats` reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from typer.testing import CliRunner

from titan.cli.common import app
from titan.data.candle import Candle
from titan.engine.ensemble import Decision, Inputs
from titan.engine.feed import Interval
from titan.engine.ledger import EquityRow, Ledger, Prediction
from titan.ops.logging import json_safe
from titan.ops.stats import (
    StatsCollector,
    checkpoint_versions,
    dumps,
    ledger_stats,
    model_versions,
    persisted_stats,
)
from titan.trading.types import Fill
from titan.training.registry import ModelRegistry

MIN = 60_000


def decision(symbol: str, ts: int, target: float) -> Decision:
    inputs = Inputs((0.6,), (0.2,), ())
    return Decision(symbol, ts, 100.0, 0.6, 0.2, 0.55, True, target, inputs, (1.0,))


def test_collector_snapshot_follows_the_engine_hooks() -> None:
    providers = {"trading": lambda: {"paused": True}, "broken": lambda: 1 / 0}
    stats = StatsCollector("eu-1", "paper", 1000.0, providers)
    stats.on_status("online")
    candles = (Candle("BTC/USDT", 0, 1, 2, 0.5, 1.5, 10), Candle("ETH/USDT", 0, 1, 2, 0.5, 1.2, 5))
    stats.on_candles(Interval(0, candles))
    stats.on_decisions(0, [decision("BTC/USDT", 0, 0.3), decision("ETH/USDT", 0, 0.0)])
    stats.on_fills([Fill("o", "BTC/USDT", 0, "buy", 1.0, 1.5, 0.01)])
    stats.on_interval(0, EquityRow(0, 1010.0, 500.0, 0.5, {"positions": {"BTC/USDT": {}}}))
    stats.on_stats(0, {"samples_seen": 10, "val_loss": float("nan")})
    snap = stats.snapshot()
    assert (snap["status"], snap["intervals"], snap["candles"]) == ("online", 1, 2)
    assert (snap["decisions"], snap["fills"]) == (2, 1)
    assert snap["equity"]["pnl"] == 10.0 and snap["positions"] == {"BTC/USDT": {}}
    btc = snap["symbols"]["BTC/USDT"]
    assert (btc["last_candle_ts"], btc["close"], btc["last_decision"]["action"]) == (0, 1.5, "long")
    assert snap["trading"] == {"paused": True} and snap["broken"] is None
    assert json.loads(dumps(snap))["fusion"]["val_loss"] is None  # strict JSON


def test_version_moves_on_every_change() -> None:
    stats = StatsCollector("x", "paper", 0.0)
    before = stats.version
    stats.on_fills([])
    assert stats.version > before


def test_json_safe_replaces_non_finite_numbers_everywhere() -> None:
    value = {"a": [1.0, float("inf"), {"b": float("-inf")}], "c": (float("nan"),)}
    assert json_safe(value) == {"a": [1.0, None, {"b": None}], "c": [None]}


def fill_ledger(path: Path) -> None:
    ledger = Ledger(path)
    rows = []
    for i in range(4):
        for symbol, close in (("BTC/USDT", 100.0 + i), ("ETH/USDT", 10.0 - i)):
            action = "long" if i % 2 else "flat"
            rows.append(
                Prediction(symbol, i * MIN, (i + 1) * MIN, close, 0.6, 0.5, 0.2, True, action, {})
            )
    with ledger.transaction():
        ids = ledger.add_predictions(rows)
        ledger.resolve_many([(ids[0], "UP", 101.0), (ids[2], "DOWN", 100.0)])
        ledger.add_fills([Fill("o1", "BTC/USDT", MIN, "buy", 2.0, 101.0, 0.1).to_dict()])
        state = {"positions": {"BTC/USDT": {"quantity": 2.0, "avg_price": 101.0}}, "trade_count": 1}
        ledger.add_equity(
            [EquityRow(MIN, 999.9, 797.9, 0.2, state), EquityRow(3 * MIN, 1003.9, 797.9, 0.2)]
        )
        ledger.set_progress({"BTC/USDT": 3 * MIN, "ETH/USDT": 3 * MIN})
        ledger.add_fusion_stats(2 * MIN, {"samples_seen": 2, "attention": {"trend": 1.0}})
    ledger.close()


def test_ledger_stats_per_symbol_account_and_fusion(tmp_path: Path) -> None:
    fill_ledger(tmp_path / "ledger.db")
    stats = ledger_stats(tmp_path / "ledger.db", starting_cash=1000.0)
    assert stats is not None
    btc = stats["symbols"]["BTC/USDT"]
    assert (btc["decisions"], btc["resolved"], btc["last_candle_ts"]) == (4, 2, 3 * MIN)
    assert btc["hit_rate"] == 0.5  # one UP (right), one DOWN (wrong) at p=0.6
    assert btc["last_decision"] == {"ts": 3 * MIN, "prob_up": 0.6, "action": "long", "fused": True}
    assert (btc["fills"], btc["in_market_decisions"]) == (1, 2)
    assert btc["position"]["unrealized_pnl"] == 2.0 * (103.0 - 101.0)  # re-marked at last close
    assert stats["symbols"]["ETH/USDT"]["position"] is None
    assert stats["account"]["pnl"] == 1003.9 - 1000.0
    assert stats["account"]["state"]["trade_count"] == 1
    assert stats["fusion"] == {"ts": 2 * MIN, "samples_seen": 2, "attention": {"trend": 1.0}}


def test_missing_state_is_reported_not_created(tmp_path: Path) -> None:
    data = persisted_stats(tmp_path / "nothing", tmp_path / "nothing" / "health.json", 1.0)
    assert data["ledger"] is None and data["checkpoints"] == [] and data["health"] is None
    assert not (tmp_path / "nothing").exists()


def test_checkpoint_versions_newest_first_with_fusion_identity(tmp_path: Path) -> None:
    for step in (5, 7):
        directory = tmp_path / f"ckpt-{step:012d}" / "fusion"
        directory.mkdir(parents=True)
        (directory.parent / "manifest.json").write_text(json.dumps({"step": step}))
        state = {"model_sha256": f"{step}" * 64, "samples_seen": step * 10}
        (directory / "fusion_state.json").write_text(json.dumps(state))
    found = checkpoint_versions(tmp_path)
    assert [c["step"] for c in found] == [7, 5]
    assert found[0]["fusion_sha256"] == "7" * 12 and found[0]["fusion_samples_seen"] == 70


class TinyModel:
    """Just enough of a base model for the registry: a name and a state dict."""

    def __init__(self, name: str, weight: float) -> None:
        self.name, self.weight = name, torch.tensor([weight, weight, weight])

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.weight}

    def parameter_count(self) -> int:
        return 3


def fill_registry(root: Path) -> None:
    registry = ModelRegistry(root)
    for version in (1, 2, 3):
        registry.save(TinyModel("cnn", version), {}, created_ms=version * MIN)  # type: ignore[arg-type]
    registry.save(TinyModel("lstm", 0.0), {}, created_ms=MIN)  # type: ignore[arg-type]
    (root / "cnn" / "ckpt-000000000003" / "state.pt").write_bytes(b"torn")  # newest corrupt


def test_model_versions_show_the_newest_valid_registered_version(tmp_path: Path) -> None:
    fill_registry(tmp_path / "models")
    found = model_versions(tmp_path / "models")
    assert list(found) == ["cnn", "lstm"]
    assert found["cnn"]["version"] == 2 and found["cnn"]["created_ms"] == 2 * MIN
    assert (found["cnn"]["stored_versions"], found["cnn"]["parameters"]) == (3, 3)
    assert found["lstm"]["version"] == 1 and found["lstm"]["code_version"]
    assert model_versions(tmp_path / "absent") == {}


def test_persisted_stats_read_the_configured_registry_else_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fill_registry(tmp_path / "configured")
    fill_registry(state / "models")
    shutil.rmtree(state / "models" / "lstm")
    configured = persisted_stats(state, state / "health.json", 1.0, (), tmp_path / "configured")
    assert configured["model_registry"] == str(tmp_path / "configured")
    assert list(configured["model_versions"]) == ["cnn", "lstm"]
    fallback = persisted_stats(state, state / "health.json", 1.0, (), tmp_path / "missing")
    assert list(fallback["model_versions"]) == ["cnn"]


def test_titan_stats_prints_the_registered_model_versions(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fill_ledger(state / "ledger.db")
    fill_registry(state / "models")
    args = ["stats", "--set", f"runtime.state_dir={state}"]
    table = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "model registry" in table.output and "lstm" in table.output
    data = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert data["model_versions"]["cnn"]["version"] == 2
