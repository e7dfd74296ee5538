"""Learning-rate schedule and early stopping: small pure state machines.

LR for optimizer step ``s`` (1 = the first step):

- warm-up, ``s <= warmup_steps``: ``lr * s / warmup_steps`` (linear from 0 to lr);
- cosine decay, the next ``lr_decay_steps`` steps: from lr down to ``lr * min_lr_ratio``;
- afterwards the floor ``lr * min_lr_ratio``, so an online model keeps adapting.

Early stopping watches the validation loss after every ``val_every``-th step, once the
fusion is active (``min_samples`` outcomes) and the validation window holds at least one
mini-batch (a handful of validation samples is too noisy to judge by). A loss below
``best - delta`` becomes the new best (the caller snapshots the weights) and resets the
patience counter; otherwise the counter grows. When it reaches ``patience`` the stopper
*triggers*: the caller restores the best weights and training pauses until the
validation window has been entirely replaced by new samples (``resume_at`` = samples
seen + validation size). While paused ``is_overfitting`` is true. On resuming, the counter
is reset and the best loss is forgotten (it was measured on an older validation window):
the first validation after the pause sets a fresh baseline.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from titan.config.fusion import FusionConfig


def lr_at(step: int, config: FusionConfig) -> float:
    """Learning rate used by optimizer step `step` (1-based)."""
    peak = config.learning_rate
    if step <= config.warmup_steps:
        return peak * step / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / config.lr_decay_steps)
    floor = peak * config.min_lr_ratio
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))


class Verdict(Enum):
    IMPROVED = "improved"
    NO_IMPROVEMENT = "no_improvement"
    TRIGGERED = "triggered"


@dataclass
class EarlyStopping:
    patience: int
    delta: float
    best: float = math.inf
    counter: int = 0
    paused: bool = False
    resume_at: int = 0
    triggered_count: int = 0

    def observe(self, val_loss: float, samples_seen: int, val_size: int) -> Verdict:
        """Record one validation loss; say whether it improved or triggered a stop."""
        if val_loss < self.best - self.delta:
            self.best, self.counter = val_loss, 0
            return Verdict.IMPROVED
        self.counter += 1
        if self.counter < self.patience:
            return Verdict.NO_IMPROVEMENT
        self.paused, self.resume_at = True, samples_seen + max(val_size, 1)
        self.triggered_count += 1
        return Verdict.TRIGGERED

    def may_train(self, samples_seen: int) -> bool:
        """False while paused; resumes (fresh baseline) once enough new samples arrived."""
        if self.paused and samples_seen >= self.resume_at:
            self.paused, self.counter, self.best = False, 0, math.inf
        return not self.paused

    def state(self) -> dict[str, Any]:
        state = asdict(self)
        state["best"] = None if math.isinf(self.best) else self.best
        return state

    def load(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        if state["best"] is None:
            self.best = math.inf
