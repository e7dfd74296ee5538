"""Refitting the neural base models: off the event loop in live runs, inline in replays.

Classic models refit in milliseconds and are refitted in place by `Ensemble.refit`. The
neural models take minutes, so at refit time the engine hands a snapshot of its training
history to a `RetrainJob`: in a replay (simulated clock) it runs inline, so backtests stay
deterministic; with the wall clock it runs in a background worker, and the winners
(candidates that beat the current model on the newest held-out window) are swapped in
between two intervals once the worker is done. New winners are saved to the model
registry; a fresh daemon starts from the registry's newest valid checkpoint.
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
    RetrainJob,
    RetrainResult,
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

    def load_registered(self) -> None:
        """A fresh start: each neural model from the registry's newest valid checkpoint."""
        for model in self.models:
            self.registry.load_latest(model)

    def job(self, history: TrainingHistory) -> RetrainJob:
        retrain = self.config.training.retrain
        return RetrainJob(
            self.names,
            ModelSpec(self.config.training.neural, self.config.models),
            snapshot_from_history(history),
            {m.name: m.state_dict() for m in self.models},
            self.step_ms,
            retrain.holdout,
            self.config.models.horizon,
            retrain.min_improvement,
        )

    def start(self, history: TrainingHistory, now_ms: int) -> None:
        """Refit now (replay) or submit to the worker (live; skipped while one runs). With
        `training.retrain.enabled = false` the neural models only come from the registry."""
        if not self.names or not self.config.training.retrain.enabled:
            return
        if self.worker is None:
            self.apply(run_retrain(self.job(history)), now_ms)
        elif not self.worker.busy:
            self.worker.submit(self.job(history))
            log.info("neural_retrain_started", models=list(self.names))

    def poll(self) -> RetrainResult | None:
        return None if self.worker is None else self.worker.poll()

    def apply(self, result: RetrainResult, now_ms: int) -> list[str]:
        swapped = apply_winners(self.models, result)
        for name, verdict in result.verdicts.items():
            log.info(
                "neural_retrain_verdict",
                model=name,
                replaced=verdict.replaced,
                candidate_log_loss=verdict.candidate_log_loss,
                current_log_loss=verdict.current_log_loss,
                n_holdout=verdict.n_holdout,
            )
        for model in self.models:
            if model.name in swapped:
                meta = {"train_range": result.train_range, "holdout_range": result.holdout_range}
                self.registry.save(model, meta, now_ms)
        return swapped

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
