"""The daemon's neural retraining (`titan.engine.retraining`): its cadence
(`training.retrain.every`), the worker registering winners with their metadata, and the
swap on the event loop (no registry write there, one event per model with versions)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

import titan.engine.retraining as retraining_module
from tests.unit.models.neural.fixtures import STEP_MS, TINY, bundled, bundled_samples
from titan.config import TitanConfig, load_config
from titan.engine.history import TrainingHistory
from titan.engine.retraining import NeuralRetraining
from titan.features import NUM_FEATURES
from titan.models.base import BaseModel
from titan.training.background import (
    Registration,
    RetrainJob,
    RetrainResult,
    Verdict,
    run_retrain,
)
from titan.training.fitting import ModelSpec, fit_models
from titan.training.registry import ModelRegistry

TINY_CNN = {
    "training.neural.cnn_filters": "[4, 8, 8]",
    "training.neural.cnn_fc": "[8, 8]",
    "training.neural.trainer.max_steps": "10",
    "training.neural.trainer.eval_every": "5",
    "training.neural.trainer.device": "cpu",
}


def _config(registry: Path, every: int = 10_080) -> TitanConfig:
    overrides = {
        "models.enabled": '["trend_vic", "cnn"]',
        "training.retrain.enabled": "true",
        "training.retrain.every": str(every),
        "training.registry.dir": str(registry),
        **TINY_CNN,
    }
    return load_config(overrides=overrides, env={})


def _retraining(config: TitanConfig) -> NeuralRetraining:
    spec = ModelSpec(config.training.neural, config.models)
    models = [spec.build(name) for name in config.models.enabled]
    return NeuralRetraining(config, models, STEP_MS, background=False)


def _fitted_cnn(config: TitanConfig, seed: int) -> BaseModel:
    neural = config.training.neural.model_copy(update={"seed": seed})
    models, _ = fit_models(["cnn"], bundled_samples(3000), ModelSpec(neural, config.models))
    return models["cnn"]


def test_retrains_start_every_training_retrain_every_candles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine offers a retrain at each refit (every 480 candles here); one starts only
    once `every` (1440) candles have passed since the previous one (clock jitter allowed)."""
    jobs: list[RetrainJob] = []

    def fake_retrain(job: RetrainJob) -> RetrainResult:
        jobs.append(job)
        return RetrainResult({})

    monkeypatch.setattr(retraining_module, "run_retrain", fake_retrain)
    retraining = _retraining(_config(tmp_path, every=1440))
    history = TrainingHistory(capacity=10, width=NUM_FEATURES)
    for candle in range(0, 6 * 1440, 480):
        jitter = 35 if candle % 960 else -20  # a live clock reads a little off the candle
        retraining.start(history, candle * STEP_MS + jitter)
    started = [round(job.registration.created_ms / STEP_MS) for job in jobs if job.registration]
    assert started == [0, 1440, 2880, 4320, 5760, 7200]


def test_the_worker_registers_winners_with_symbols_timeframe_and_held_out_metrics(
    tmp_path: Path,
) -> None:
    series = (bundled("BTC/USDT", 3000), bundled("ETH/USDT", 3000))
    registration = Registration(tmp_path, 5, 123_000, "binanceusdm", "1m")
    job = RetrainJob(("cnn",), ModelSpec(TINY), series, {}, STEP_MS, 400, 1, 0.0, registration)
    result = run_retrain(job)
    assert result.versions == {"cnn": 1} and set(result.states) == {"cnn"}
    meta = ModelRegistry(tmp_path).latest_meta("cnn")
    assert meta is not None and meta["created_ms"] == 123_000 and meta["version"] == 1
    assert meta["source"] == "daemon_retrain" and meta["code_version"]
    data = meta["data"]
    assert data["symbols"] == ["BTC/USDT", "ETH/USDT"] and data["timeframe"] == "1m"
    assert data["exchange"] == "binanceusdm" and data["train_samples"] == result.train_samples
    assert (data["train_start_ms"], data["train_end_ms"]) == result.train_range
    assert (data["holdout_start_ms"], data["holdout_end_ms"]) == result.holdout_range
    verdict, holdout = result.verdicts["cnn"], meta["metrics"]["holdout"]
    assert holdout["log_loss"] == pytest.approx(verdict.candidate_log_loss)
    assert math.isnan(verdict.current_log_loss) and holdout["replaced_log_loss"] is None
    assert holdout["n"] == verdict.n_holdout > 300
    assert meta["training"]["neural"]["cnn_filters"] == [4, 8, 8]


def test_a_job_carries_the_registration_of_the_daemon(tmp_path: Path) -> None:
    config = _config(tmp_path)
    job = _retraining(config).job(TrainingHistory(capacity=10, width=NUM_FEATURES), 42_000)
    assert job.registration == Registration(
        tmp_path, config.training.registry.keep, 42_000, config.data.exchange, "1m"
    )


def test_apply_swaps_on_the_loop_without_writing_the_registry_and_logs_versions(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    registry = ModelRegistry(tmp_path)
    registry.save(_fitted_cnn(config, seed=0), {}, 1)
    retraining = _retraining(config)
    retraining.load_registered()
    assert retraining.versions == {"cnn": 1}
    new = _fitted_cnn(config, seed=5)
    verdict = Verdict("cnn", True, 0.69, 0.70, 400)
    result = RetrainResult({"cnn": verdict}, {"cnn": new.state_dict()}, versions={"cnn": 2})
    with capture_logs() as logs:
        assert retraining.apply(result, 7_000) == ["cnn"]
    swaps = [e for e in logs if e["event"] == "neural_model_swapped"]
    assert swaps == [
        {
            "event": "neural_model_swapped",
            "log_level": "info",
            "model": "cnn",
            "old_version": 1,
            "new_version": 2,
            "at_ms": 7_000,
        }
    ]
    assert registry.versions("cnn") == [1]  # the worker registered it; nothing written here
    windows = bundled_samples(3000).windows[-5:]
    np.testing.assert_array_equal(
        retraining.models[0].predict(windows).prob_up, new.predict(windows).prob_up
    )
