"""Refitting the neural base models: off the event loop in live runs, inline in replays.

Classic models refit in milliseconds and are refitted in place by `Ensemble.refit`. The
neural models take minutes, so at refit time the engine hands a snapshot of its training
history to a `RetrainJob`: in a replay (simulated clock) it runs inline, so backtests stay
deterministic; with the wall clock it runs in a background worker, and the winners
(candidates that beat the current model on the newest held-out window) are swapped in
between two intervals once the worker is done. Retrains start at walk-forward refits at
most every `training.retrain.every` candles. The worker saves new winners to the model
registry (with their data range, symbols, timeframe and held-out log losses; off the event
loop) and each swap is logged with the old and new registry versions; a fresh daemon
starts from the registry's newest valid checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from titan.config import TitanConfig
from titan.engine.history import TrainingHistory
from titan.models.base import BaseModel
from titan.models.neural.registry import NEURAL_NAMES
from titan.training.background import (
    BackgroundRetrainer,
    Registration,
    RetrainJob,
    RetrainResult,
    Verdict,
    apply_winners,
    run_retrain,
    snapshot_from_history,
)
from titan.training.fitting import ModelSpec
from titan.training.registry import ModelRegistry

log = structlog.get_logger(__name__)


class NeuralRetraining:
    def __init__(
        self, config: TitanConfig, models: Sequence[BaseModel], step_ms: int, background: bool
    ) -> None:
        self.config = config
        self.models = [m for m in models if m.name in NEURAL_NAMES]
        self.names = tuple(m.name for m in self.models)
        self.step_ms = step_ms
        retrain = config.training.retrain
        self.worker = (
            BackgroundRetrainer(retrain.executor, nice=retrain.worker_nice) if background else None
        )
        self.registry = ModelRegistry(config.training.registry.dir, config.training.registry.keep)
        self.versions: dict[str, int | None] = dict.fromkeys(self.names)
        self.last_start_ms: int | None = None

    def load_registered(self) -> None:
        """A fresh start: each neural model from the registry's newest valid checkpoint."""
        for model in self.models:
            checkpoint = self.registry.load_latest(model)
            if checkpoint is not None:
                self.versions[model.name] = checkpoint.version

    def job(self, history: TrainingHistory, now_ms: int) -> RetrainJob:
        retrain, registry = self.config.training.retrain, self.config.training.registry
        data = self.config.data
        return RetrainJob(
            self.names,
            ModelSpec(self.config.training.neural, self.config.models),
            snapshot_from_history(history),
            {m.name: m.state_dict() for m in self.models},
            self.step_ms,
            retrain.holdout,
            self.config.models.horizon,
            retrain.min_improvement,
            Registration(registry.dir, registry.keep, now_ms, data.exchange, data.timeframe),
        )

    def due(self, now_ms: int) -> bool:
        """`training.retrain.every` candles since the last retrain started (or none yet)."""
        if self.last_start_ms is None:
            return True
        elapsed = round((now_ms - self.last_start_ms) / self.step_ms)
        return elapsed >= self.config.training.retrain.every

    def start(self, history: TrainingHistory, now_ms: int) -> None:
        """Refit now (replay) or submit to the worker (live; skipped while one runs).

        The engine calls this at each walk-forward refit (`models.refit_every`); a retrain
        starts when `due` (`training.retrain.every` candles after the previous one), so
        the cadence is `every` rounded up to the refits. With `training.retrain.enabled =
        false` the neural models only come from the registry."""
        if not self.names or not self.config.training.retrain.enabled or not self.due(now_ms):
            return
        if self.worker is None:
            self.last_start_ms = now_ms
            self.apply(run_retrain(self.job(history, now_ms)), now_ms)
        elif not self.worker.busy:
            self.last_start_ms = now_ms
            self.worker.submit(self.job(history, now_ms))
            log.info("neural_retrain_started", models=list(self.names), at_ms=now_ms)

    def poll(self) -> RetrainResult | None:
        return None if self.worker is None else self.worker.poll()

    def apply(self, result: RetrainResult, now_ms: int) -> list[str]:
        """Load the winners (the worker has already registered them); log each swap."""
        swapped = apply_winners(self.models, result)
        for verdict in result.verdicts.values():
            _log_verdict(verdict)
        for name in swapped:
            old, new = self.versions.get(name), result.versions.get(name)
            log.info(
                "neural_model_swapped", model=name, old_version=old, new_version=new, at_ms=now_ms
            )
            self.versions[name] = new
        return swapped

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


def _log_verdict(verdict: Verdict) -> None:
    log.info(
        "neural_retrain_verdict",
        model=verdict.name,
        replaced=verdict.replaced,
        candidate_log_loss=verdict.candidate_log_loss,
        current_log_loss=verdict.current_log_loss,
        n_holdout=verdict.n_holdout,
    )
