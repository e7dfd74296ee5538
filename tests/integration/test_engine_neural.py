"""Neural base models inside the engine: refitted walk-forward (inline in a replay, so a
backtest stays deterministic), winners registered, a fresh daemon loads the registry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from structlog.testing import capture_logs

from tests.integration.engine_setup import run, small_config
from tests.unit.models.neural.fixtures import bundled_samples
from titan.config import TitanConfig
from titan.engine.compose import build_engine
from titan.engine.engine import Engine
from titan.engine.feed import Interval
from titan.models.base import BaseModel
from titan.training.background import RetrainResult, Verdict
from titan.training.fitting import ModelSpec, fit_models
from titan.training.registry import ModelRegistry

pytestmark = pytest.mark.slow

NEURAL = {
    "models.enabled": '["trend_vic", "oscillator", "lstm"]',
    "training.retrain.enabled": "true",
    "training.retrain.holdout": "200",
    "training.neural.lstm_hidden": "16",
    "training.neural.trainer.max_steps": "30",
    "training.neural.trainer.eval_every": "10",
    "training.neural.trainer.device": "cpu",
    "training.retrain.every": "480",
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


def _fitted(config: TitanConfig, name: str, seed: int) -> BaseModel:
    """`name` built as the engine builds it (config's architecture), fitted on a sample."""
    neural = config.training.neural.model_copy(update={"seed": seed})
    models, _ = fit_models([name], bundled_samples(3000), ModelSpec(neural, config.models))
    assert models[name].is_fitted
    return models[name]


def test_a_fresh_engine_loads_the_newest_registered_model(tmp_path: Path) -> None:
    """Deterministic precondition: two versions registered up front, the newest is used."""
    registry = tmp_path / "registry"
    later = {**NEURAL, "training.retrain.enabled": "false", "feed.end": "2025-05-04T20:00:00"}
    config = small_config(tmp_path / "b", **later, **{"training.registry.dir": str(registry)})
    store = ModelRegistry(registry, config.training.registry.keep)
    older, newest = _fitted(config, "lstm", seed=0), _fitted(config, "lstm", seed=1)
    store.save(older, {}, 1)
    store.save(newest, {}, 2)
    with capture_logs() as logs:
        engine, _ = run(config)
    loaded = [e for e in logs if e["event"] == "model_loaded" and e["model"] == "lstm"]
    assert [e["version"] for e in loaded] == [2]
    frame = engine.ledger.frame("predictions")
    lstm = np.array([json.loads(i)["p"][2] for i in frame["inputs"]])
    assert np.isfinite(lstm).all() and isinstance(frame, pl.DataFrame)
    windows = bundled_samples(3000).windows[-4:]
    engine_lstm = engine.ensemble.models[2]
    np.testing.assert_array_equal(
        engine_lstm.predict(windows).prob_up, newest.predict(windows).prob_up
    )


CNN = {
    "models.enabled": '["trend_vic", "oscillator", "cnn"]',
    "training.neural.cnn_filters": "[4, 8, 8]",
    "training.neural.cnn_fc": "[8, 8]",
    "training.neural.trainer.max_steps": "30",
    "training.neural.trainer.eval_every": "10",
    "training.neural.trainer.device": "cpu",
    "feed.end": "2025-05-05T04:00:00",  # 720 intervals
}
SWAP_AT = 500  # intervals


class _FinishedRetrain:
    """Stands in for the worker pool only: `poll` hands over a finished retrain once the
    engine has processed `at` intervals (the engine then swaps it in as in a live run)."""

    def __init__(self, engine: Engine, result: RetrainResult, at: int) -> None:
        self.engine, self.result, self.at = engine, result, at
        self.busy = False

    def poll(self) -> RetrainResult | None:
        if self.result is None or self.engine.summary.intervals < self.at:
            return None
        result, self.result = self.result, None
        return result

    def close(self) -> None:
        pass


def test_a_swapped_in_model_decides_and_the_fusion_keeps_learning(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    config = small_config(tmp_path / "s", **CNN, **{"training.registry.dir": str(registry)})
    old, new = _fitted(config, "cnn", seed=0), _fitted(config, "cnn", seed=5)
    ModelRegistry(registry).save(old, {}, 1)
    verdict = Verdict("cnn", True, 0.69, 0.70, 400)
    result = RetrainResult({"cnn": verdict}, {"cnn": new.state_dict()}, versions={"cnn": 2})
    engine = build_engine(config)
    assert engine.parts.retraining is not None
    engine.parts.retraining.worker = _FinishedRetrain(engine, result, SWAP_AT)  # type: ignore[assignment]
    seen: dict[int, int] = {}
    windows: dict[tuple[int, str], np.ndarray] = {}
    fusions: set[int] = set()

    def watch(interval: Interval) -> None:
        seen[interval.ts] = engine.ensemble.fusion.samples_seen
        fusions.add(id(engine.ensemble.fusion))
        lookback, buffers = engine.ensemble.lookback, engine.parts.buffers
        for symbol in (c.symbol for c in interval.candles if buffers.is_warm(c.symbol, lookback)):
            windows[(interval.ts, symbol)] = buffers.windows([symbol], lookback)

    engine.on_interval = watch
    with capture_logs() as logs:
        asyncio.run(engine.run())
    swap = next(e for e in logs if e["event"] == "neural_model_swapped")
    assert (swap["model"], swap["old_version"], swap["new_version"]) == ("cnn", 1, 2)
    swap_ts = swap["at_ms"] - engine.step_ms  # the interval whose decisions first use it
    frame = engine.ledger.frame("predictions")
    cnn = {
        (ts, symbol): json.loads(inputs)["p"][2]
        for ts, symbol, inputs in frame.select("ts", "symbol", "inputs").iter_rows()
    }
    after = sorted(k for k in cnn if k[0] >= swap_ts)
    before = sorted(k for k in cnn if k[0] < swap_ts)[-40:]
    assert len(after) > 300 and len(before) == 40
    for keys, model in ((before, old), (after, new)):
        expected = model.predict(np.concatenate([windows[k] for k in keys])).prob_up
        np.testing.assert_allclose([cnn[k] for k in keys], expected, rtol=0, atol=1e-6)
    stale = old.predict(np.concatenate([windows[k] for k in after])).prob_up
    assert np.abs(np.array([cnn[k] for k in after]) - stale).max() > 1e-4  # not the old one
    stamps = sorted(seen)
    at_swap = seen[max(t for t in stamps if t < swap_ts)]
    assert at_swap > 0 and seen[stamps[-1]] > at_swap + 200  # kept learning after the swap
    assert len(fusions) == 1  # the same fusion throughout: the swap does not reset it
