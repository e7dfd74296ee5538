"""The neural models drop into the engine's Ensemble exactly like the classic models, and
a background retrain's winners (or registry checkpoints) swap into it between decisions."""

from __future__ import annotations

import numpy as np

from tests.unit.models.neural.fixtures import STEP_MS, TINY, bundled
from titan.config.fusion import FusionConfig
from titan.engine.ensemble import Ensemble
from titan.engine.history import TrainingHistory
from titan.features import FEATURE_NAMES
from titan.fusion import TransformerFusion
from titan.training.background import RetrainJob, apply_winners, run_retrain, snapshot_from_history
from titan.training.fitting import ModelSpec

NAMES = ("trend_vic", "lstm", "cnn", "attention", "neural_ensemble")
SPEC = ModelSpec(TINY)


def _history(n: int = 2500) -> tuple[TrainingHistory, dict[str, np.ndarray]]:
    history = TrainingHistory(capacity=n, width=len(FEATURE_NAMES))
    windows = {}
    for symbol in ("BTC/USDT", "ETH/USDT"):
        series = bundled(symbol, 3000)
        for i in range(series.close.shape[0] - n, series.close.shape[0]):
            history.push(symbol, int(series.ts[i]), series.table[i], float(series.close[i]))
        windows[symbol] = series.table[-30:]
    return history, windows


def _ensemble() -> Ensemble:
    models = [SPEC.build(name) for name in NAMES]
    fusion = TransformerFusion(FusionConfig(device="cpu"), len(models))
    return Ensemble(models, fusion, lambda p, c: 0.0, horizon=1)


def test_neural_models_refit_and_decide_inside_the_engine_ensemble() -> None:
    history, windows = _history()
    ensemble = _ensemble()
    used = ensemble.refit(history, min_train=500)
    assert all(count > 2000 for count in used.values())
    batch = np.stack([windows["BTC/USDT"], windows["ETH/USDT"]])
    prob, confidence, _ = ensemble.infer(batch)
    assert ((confidence >= 0) & (confidence <= 1)).all()
    assert prob.shape == (2, len(NAMES)) and np.isfinite(prob).all()
    decisions = ensemble.decide(["BTC/USDT", "ETH/USDT"], [1, 1], [1.0, 1.0], batch)
    assert [d.symbol for d in decisions] == ["BTC/USDT", "ETH/USDT"]
    assert all(0.0 <= d.prob_up <= 1.0 for d in decisions)


def test_a_background_retrain_winner_swaps_into_the_engine_models() -> None:
    history, windows = _history()
    ensemble = _ensemble()
    current = {m.name: m.state_dict() for m in ensemble.models}
    job = RetrainJob(NAMES, SPEC, snapshot_from_history(history), current, STEP_MS, holdout=300)
    result = run_retrain(job)
    assert set(result.states) == set(NAMES)  # the current models were unfitted
    assert apply_winners(ensemble.models, result) == list(NAMES)
    prob, _, _ = ensemble.infer(np.stack([windows["BTC/USDT"]]))
    assert np.isfinite(prob).all()
