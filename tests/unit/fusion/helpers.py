"""Synthetic model-output streams and small builders shared by the fusion tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from titan.config.fusion import FusionConfig
from titan.fusion import TransformerFusion
from titan.models.base import ModelOutput

FloatArray = np.ndarray


@dataclass(frozen=True)
class Stream:
    """n samples of M model outputs with realised directions."""

    prob: FloatArray  # (n, M), NaN = missing
    confidence: FloatArray  # (n, M)
    up: FloatArray  # (n,) bool
    context: FloatArray | None = None  # (n, C)
    extras: FloatArray | None = None  # (n, M, E)

    @property
    def directions(self) -> list[str]:
        return ["UP" if u else "DOWN" for u in self.up]

    def rows(self, lo: int, hi: int) -> Stream:
        return Stream(
            self.prob[lo:hi],
            self.confidence[lo:hi],
            self.up[lo:hi],
            None if self.context is None else self.context[lo:hi],
            None if self.extras is None else self.extras[lo:hi],
        )

    def outputs(self, i: int) -> list[ModelOutput]:
        extras = self.extras
        return [
            ModelOutput(
                float(self.prob[i, j]),
                float(self.confidence[i, j]),
                {} if extras is None else {"ret": float(extras[i, j, 0])},
            )
            for j in range(self.prob.shape[1])
        ]

    def features(self, i: int) -> dict[str, float] | None:
        if self.context is None:
            return None
        return {name: float(v) for name, v in zip(CONTEXT, self.context[i], strict=True)}


CONTEXT = ("close_z", "rsi", "volatility")


def informative_stream(
    n: int, n_models: int = 4, seed: int = 0, strength: float = 1.2, missing: float = 0.0
) -> Stream:
    """Model 0 is informative (its logit leans towards the outcome); the others are noise."""
    rng = np.random.default_rng(seed)
    up = rng.random(n) < 0.5
    prob = rng.uniform(0.05, 0.95, size=(n, n_models))
    prob[:, 0] = 1.0 / (1.0 + np.exp(-(strength * (2 * up - 1) + rng.normal(0.0, 1.0, n))))
    if missing:
        prob[rng.random((n, n_models)) < missing] = np.nan
    confidence = rng.uniform(0.0, 1.0, size=(n, n_models))
    return Stream(prob, confidence, up)


def rich_stream(n: int, n_models: int = 4, seed: int = 1) -> Stream:
    """An informative stream with context features, one extra per model and gaps."""
    base = informative_stream(n, n_models, seed, missing=0.1)
    rng = np.random.default_rng(seed + 100)
    context = np.column_stack(
        [rng.normal(0, 1, n), rng.uniform(0, 100, n), rng.gamma(2.0, 0.01, n)]
    )
    context[rng.random(context.shape) < 0.1] = np.nan
    extras = rng.normal(0.0, 0.01, size=(n, n_models, 1))
    return Stream(base.prob, base.confidence, base.up, context, extras)


def make_fusion(stream: Stream | None = None, **overrides: object) -> TransformerFusion:
    settings: dict[str, object] = {
        "device": "cpu",
        "train_every": 1,
        "require_beating_average": False,
        **overrides,
    }
    config = FusionConfig.model_validate(settings)
    n_models = 4 if stream is None else stream.prob.shape[1]
    rich = stream is not None and stream.context is not None
    return TransformerFusion(
        config,
        n_models,
        context_features=CONTEXT if rich else (),
        extra_features=("ret",) if rich else (),
    )


def feed(fusion: TransformerFusion, stream: Stream) -> None:
    """All samples of `stream` through `update_batch` (same state as one by one)."""
    fusion.update_batch(
        stream.prob, stream.confidence, stream.directions, stream.extras, stream.context
    )


def params(fusion: TransformerFusion) -> list[torch.Tensor]:
    return [p.detach().clone() for p in fusion.network.parameters()]


def log_loss(prob: FloatArray, up: FloatArray) -> float:
    q = np.clip(prob, 1e-7, 1 - 1e-7)
    return float(-np.mean(np.where(up, np.log(q), np.log(1 - q))))
