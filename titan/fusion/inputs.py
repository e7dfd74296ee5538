"""Turn model outputs and context features into the fusion's raw input arrays.

Each model becomes one token of `TOKEN_FEATURES` followed by the configured extras:

- ``prob_centered`` = prob_up - 0.5 and ``prob_logit`` = logit(prob_up) (prob_up clipped to
  [1e-4, 1 - 1e-4] first), ``confidence``, then one column per name in ``extra_features``
  read from `ModelOutput.extras`.
- A non-finite prob_up marks the model *missing*: its token is masked out of attention and
  the simple average skips it. Finite prob_up is clipped into [0, 1].
- A missing extra, a missing context key or any non-finite value (also a float32 overflow)
  is NaN in the raw float32 arrays and becomes 0 (the standardised mean) with a presence
  flag of 0 when standardised.

The same vectorised code encodes one row (`forward`) and many (`forward_batch`), so a row's
raw inputs are identical whichever way it arrives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from titan.models.base import ModelOutput

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

TOKEN_FEATURES: tuple[str, ...] = ("prob_centered", "prob_logit", "confidence")
LOGIT_CLIP = 1e-4
F32_MAX = float(np.finfo(np.float32).max)


def token_features(prob_up: F64, confidence: F64, extras: F64 | None) -> F32:
    """(B, M) prob_up and confidence (+ (B, M, E) extras) -> raw (B, M, 3 + E) float32 tokens."""
    prob = clean_prob(prob_up)
    clipped = np.minimum(np.maximum(prob, LOGIT_CLIP), 1.0 - LOGIT_CLIP)
    n_extras = 0 if extras is None else extras.shape[-1]
    out = np.empty((*prob.shape, len(TOKEN_FEATURES) + n_extras))
    out[..., 0] = prob - 0.5
    out[..., 1] = np.log(clipped) - np.log1p(-clipped)
    out[..., 2] = confidence
    if extras is not None and n_extras:
        out[..., 3:] = extras
    return finite_f32(out)


def prior_logits(tokens: Tensor) -> Tensor:
    """The models' raw logits from raw (B, M, F) tokens, 0 where a model is missing."""
    return torch.nan_to_num(tokens[..., 1], nan=0.0)


def prior_logit_array(tokens: F32) -> F32:
    """`prior_logits` for numpy raw (B, M, F) tokens, the same values."""
    logit = tokens[..., 1]
    return np.where(logit == logit, logit, np.float32(0.0))


def finite_f32(values: F64) -> F32:
    """float32 copy with every non-finite value (NaN, +-inf, float32 overflow) set to NaN."""
    return np.where(np.abs(values) <= F32_MAX, values, np.nan).astype(np.float32)


def clean_prob(prob_up: F64) -> F64:
    """Non-finite -> NaN (the missing marker), the rest clipped into [0, 1]."""
    prob = np.where(np.isfinite(prob_up), prob_up, np.nan)
    return np.minimum(np.maximum(prob, 0.0), 1.0)


def simple_average(prob_up: F64) -> tuple[F64, F64]:
    """NaN-masked mean of (B, M) probabilities and the weight each model got.

    Rows with every model missing give 0.5 and all-zero weights.
    """
    prob = clean_prob(prob_up)
    present = np.isfinite(prob)
    count = present.sum(axis=1)
    total = np.where(present, prob, 0.0).sum(axis=1)
    safe = np.maximum(count, 1)
    mean = np.where(count > 0, total / safe, 0.5)
    weights = present / safe[:, None]
    return mean, weights


class RowEncoder:
    """Writes one call's `ModelOutput`s and features dict into reusable (1, ...) arrays."""

    def __init__(self, n_models: int, extra_features: Sequence[str], context: Sequence[str]):
        self.extra_features = tuple(extra_features)
        self.context_features = tuple(context)
        self.prob = np.empty((1, n_models))
        self.confidence = np.empty((1, n_models))
        self.extras = np.empty((1, n_models, len(self.extra_features)))
        self.context = np.empty((1, len(self.context_features)))

    def encode(
        self, outputs: Sequence[ModelOutput], features: Mapping[str, float] | None
    ) -> tuple[F64, F64, F64 | None, F64 | None]:
        for j, out in enumerate(outputs):
            self.prob[0, j] = out.prob_up
            self.confidence[0, j] = out.confidence
            for e, name in enumerate(self.extra_features):
                self.extras[0, j, e] = out.extras.get(name, np.nan)
        for k, name in enumerate(self.context_features):
            self.context[0, k] = np.nan if features is None else features.get(name, np.nan)
        extras = self.extras if self.extra_features else None
        context = self.context if self.context_features else None
        return self.prob, self.confidence, extras, context


def check_shapes(
    prob: F64, confidence: F64, extras: F64 | None, context: F64 | None, layout: RowEncoder
) -> None:
    """Raise ValueError unless the arrays fit (B, M) prob_up and `layout`'s feature names."""
    rows, models = prob.shape
    if np.shape(confidence) != prob.shape:
        raise ValueError(f"confidence shape {np.shape(confidence)} != prob_up {prob.shape}")
    want_extras = (rows, models, len(layout.extra_features))
    if layout.extra_features and (extras is None or np.shape(extras) != want_extras):
        raise ValueError(f"extras must have shape {want_extras}, got {_shape(extras)}")
    want_context = (rows, len(layout.context_features))
    if layout.context_features and (context is None or np.shape(context) != want_context):
        raise ValueError(f"context must have shape {want_context}, got {_shape(context)}")


def _shape(array: F64 | None) -> tuple[int, ...] | None:
    return None if array is None else np.shape(array)
