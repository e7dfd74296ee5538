"""`[training]`: the neural base models (architecture, fitting) and the offline pipeline.

- `NeuralConfig`: the LSTM / CNN / attention / ensemble architectures of
  lstm-cnn-attention-ensemble.md (30 x 40 windows) and how one `fit` trains them.
- `TrainerConfig`: the optimisation loop (AdamW, LR schedule, gradient clipping, early
  stopping on the newest held-out slice, step and epoch budgets, device).
- `WalkForwardConfig`: `titan train`'s rolling (or expanding) windows with a purge gap.
- `RegistryConfig`: where versioned checkpoints go and how many are kept.
- `RetrainConfig`: background retraining in the daemon (cadence, held-out comparison).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from titan.config.base import Section

NeuralName = Literal["lstm", "cnn", "attention", "neural_ensemble", "multiscale_cnn"]
NEURAL_MODELS: tuple[NeuralName, ...] = ("lstm", "cnn", "attention", "neural_ensemble")


class TrainerConfig(Section):
    """One network fit: mini-batch AdamW on the training part, early stopping on the tail."""

    batch_size: int = Field(64, ge=2)
    max_epochs: int = Field(10, ge=1, description="passes over the training part (upper bound)")
    max_steps: int = Field(200, ge=1, description="optimiser steps per fit (upper bound)")
    eval_every: int = Field(50, ge=1, description="steps between validations (and per epoch)")
    patience: int = Field(2, ge=1, description="validations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0.0, description="smallest validation gain that counts")
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0, description="AdamW decoupled weight decay")
    grad_clip: float = Field(1.0, gt=0.0, description="max global gradient norm")
    schedule: Literal["cosine", "plateau", "constant"] = "cosine"
    warmup_steps: int = Field(20, ge=0, description="linear LR warm-up (cosine schedule)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch: int = Field(2048, ge=1, description="rows per inference chunk")


class NeuralConfig(Section):
    """Architectures (defaults: the design document's) and the fitting recipe."""

    lookback: int = Field(30, ge=8, description="timesteps per window")
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    lstm_hidden: int = Field(128, ge=1)
    lstm_layers: int = Field(2, ge=1)
    lstm_bidirectional: bool = True
    cnn_filters: tuple[int, ...] = (32, 64, 128)
    cnn_kernels: tuple[int, ...] = (3, 5, 7)
    cnn_fc: tuple[int, int] = (128, 64)
    attention_dim: int = Field(128, ge=1)
    attention_heads: int = Field(8, ge=1)
    attention_blocks: int = Field(2, ge=1)
    attention_ffn: int = Field(512, ge=1, description="feed-forward width (4 x dim)")
    attention_fc: int = Field(64, ge=1)
    positional: Literal["learned", "fixed"] = Field(
        "learned",
        description="learned (1 x lookback x dim) table, or a fixed sinusoidal buffer "
        "(the reading that reproduces the document's 410,241 parameters)",
    )
    ensemble_hidden: int = Field(64, ge=1, description="weight predictor width")
    meta_hidden: tuple[int, int] = (64, 32)
    objective: Literal["return", "direction"] = Field(
        "direction",
        description="with returns given: regress the next-period return (Huber on standardised "
        "returns, the documents' target) or learn the direction (BCE; better walk-forward, see "
        "docs/neural.md); `fit(windows, labels)` always learns the direction",
    )
    return_loss: Literal["huber", "mse"] = Field(
        "huber", description="loss on standardised returns (Huber: robust to fat tails)"
    )
    feature_clip: float = Field(8.0, gt=0.0, description="clip standardised features to +-this")
    valid_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="newest share held out: early stopping + calibration"
    )
    min_samples: int = Field(200, ge=20, description="labelled samples needed to fit")
    seed: int = 0
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    def architecture(self) -> dict[str, object]:
        """The settings that shape the networks' weights (a checkpoint must match them)."""
        shaping = ("lookback", "lstm_", "cnn_", "attention_", "positional", "ensemble_", "meta_")
        return {
            key: value
            for key, value in self.model_dump(mode="json").items()
            if key.startswith(shaping)
        }

    @model_validator(mode="after")
    def _consistent(self) -> NeuralConfig:
        if len(self.cnn_filters) != len(self.cnn_kernels) or not self.cnn_filters:
            raise ValueError("cnn_filters and cnn_kernels must be non-empty and equally long")
        if self.attention_dim % self.attention_heads:
            raise ValueError("attention_dim must be divisible by attention_heads")
        if self.lookback >> len(self.cnn_filters) < 1:
            raise ValueError("lookback too short for the CNN's pooling stages")
        return self


class WalkForwardConfig(Section):
    """`titan train`: chronological folds, never a shuffled split across time."""

    train_days: float = Field(14.0, gt=0.0)
    test_days: float = Field(3.0, gt=0.0)
    step_days: float | None = Field(None, gt=0.0, description="fold advance (default test_days)")
    expanding: bool = Field(False, description="train on all past data instead of a window")
    max_folds: int | None = Field(
        3, ge=1, description="evaluate only the newest N folds (None: all)"
    )
    horizon: int = Field(1, ge=1, description="candles ahead the label looks")
    extra_purge: int = Field(
        0, ge=0, description="samples added to horizon + lookback + feature warm-up (WARMUP)"
    )


class RegistryConfig(Section):
    """The on-disk model registry: `<dir>/<model>/ckpt-<version>/`."""

    dir: Path = Path("state/models")
    keep: int = Field(5, ge=1, description="versions kept per model")


class RetrainConfig(Section):
    """Background retraining in the daemon (a worker process; the loop never blocks)."""

    enabled: bool = False
    every: int = Field(
        10_080,
        ge=1,
        description="candles between neural retrain starts (checked at each models.refit_every)",
    )
    holdout: int = Field(1440, ge=50, description="newest labelled samples held out to compare")
    executor: Literal["process", "thread"] = "process"
    worker_nice: int = Field(10, ge=0, le=19, description="CPU niceness added to the worker")
    min_improvement: float = Field(
        0.0, ge=0.0, description="log-loss margin the candidate must beat the current by"
    )


class TrainingConfig(Section):
    models: tuple[NeuralName, ...] = NEURAL_MODELS
    neural: NeuralConfig = Field(default_factory=NeuralConfig)
    walk_forward: WalkForwardConfig = Field(default_factory=WalkForwardConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
