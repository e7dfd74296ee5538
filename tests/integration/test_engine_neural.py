"""Neural base models inside the engine: refitted walk-forward (inline in a replay, so a
backtest stays deterministic), winners registered, a fresh daemon loads the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from structlog.testing import capture_logs

from tests.integration.engine_setup import run, small_config

pytestmark = pytest.mark.slow

NEURAL = {
    "models.enabled": '["trend_vic", "oscillator", "lstm"]',
    "training.retrain.enabled": "true",
    "training.retrain.holdout": "200",
    "training.neural.lstm_hidden": "16",
    "training.neural.trainer.max_steps": "30",
    "training.neural.trainer.eval_every": "10",
    "training.neural.trainer.device": "cpu",
    "feed.end": "2025-05-06T06:00:00",
}


def test_lstm_is_refitted_in_the_replay_and_registered(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    config = small_config(tmp_path / "state", **NEURAL, **{"training.registry.dir": str(registry)})
    with capture_logs() as logs:
        engine, summary = run(config)
    assert summary.finished
    verdicts = [e for e in logs if e["event"] == "neural_retrain_verdict"]
    assert verdicts and all(v["model"] == "lstm" for v in verdicts)
    lstm = np.array([json.loads(i)["p"][2] for i in engine.ledger.frame("predictions")["inputs"]])
    assert np.isfinite(lstm).sum() > 100  # once fitted, the LSTM's forecasts reach the fusion
    if any(v["replaced"] for v in verdicts):
        assert list((registry / "lstm").glob("ckpt-*"))


def test_a_fresh_engine_loads_the_newest_registered_model(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    first = small_config(tmp_path / "a", **NEURAL, **{"training.registry.dir": str(registry)})
    run(first)
    if not list((registry / "lstm").glob("ckpt-*")):
        pytest.skip("the candidate never beat the unfitted model on this window")
    later = {**NEURAL, "training.retrain.enabled": "false", "feed.end": "2025-05-04T20:00:00"}
    second = small_config(tmp_path / "b", **later, **{"training.registry.dir": str(registry)})
    with capture_logs() as logs:
        engine, _ = run(second)
    assert any(e["event"] == "model_loaded" and e["model"] == "lstm" for e in logs)
    frame = engine.ledger.frame("predictions")
    lstm = np.array([json.loads(i)["p"][2] for i in frame["inputs"]])
    assert np.isfinite(lstm).any() and isinstance(frame, pl.DataFrame)
