"""`TransformerFusion`: fuse N base models' outputs into P(up), learning online.

See the package docstring (`titan/fusion/__init__.py`) for the behaviour in full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypedDict

import numpy as np
import numpy.typing as npt
import torch

from titan.config.fusion import FusionConfig
from titan.fusion import persistence
from titan.fusion.buffer import SampleBuffer
from titan.fusion.fallback import FallbackReason, ReasonLog
from titan.fusion.inputs import (
    F32,
    F64,
    TOKEN_FEATURES,
    RowEncoder,
    check_shapes,
    finite_f32,
    prior_logit_array,
    simple_average,
    token_features,
)
from titan.fusion.network import FusionNetwork, key_bias_array
from titan.fusion.scaling import Standardiser
from titan.fusion.trainer import NEVER, FusionTrainer
from titan.models.base import ModelOutput

Direction = Literal["UP", "DOWN"]
LABELS: dict[str, float] = {"UP": 1.0, "DOWN": 0.0}
MIN_ROWS = 8  # BLAS rounds tiny matrices differently: pad inference batches to this many rows
ATTENTION_WINDOW = 256  # newest buffered samples summarised by get_attention_weights()
LOGIT_LIMIT = 40.0
Bools = npt.NDArray[np.bool_]


class FusionBatch(NamedTuple):
    """`forward_batch` result: P(up) per row (B,) and the weight each model got (B, M)."""

    prob_up: F64
    attention: F64


class TrainingStats(TypedDict):
    samples_seen: int
    samples_trained: int
    train_steps: int
    train_loss: float
    val_loss: float
    average_val_loss: float
    best_val_loss: float
    current_lr: float
    grad_norm: float
    is_overfitting: bool
    early_stops: int
    patience_counter: int
    avg_attention_entropy: float
    buffer_train: int
    buffer_val: int
    samples_rejected: int
    samples_skipped: int
    active: bool
    fallback_reason: str | None


def resolve_device(setting: str) -> torch.device:
    """`auto` -> cuda when available, else cpu."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


class TransformerFusion:
    def __init__(
        self,
        config: FusionConfig,
        n_models: int,
        *,
        context_features: Sequence[str] = (),
        extra_features: Sequence[str] = (),
    ) -> None:
        if n_models < 1:
            raise ValueError(f"n_models must be >= 1, got {n_models}")
        for names in (context_features, extra_features):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate feature names in {list(names)}")
        self.config = config
        self.n_models = n_models
        self.context_features = tuple(context_features)
        self.extra_features = tuple(extra_features)
        self.device = resolve_device(config.device)
        n_token, n_context = len(TOKEN_FEATURES) + len(extra_features), len(context_features)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.network = FusionNetwork(config, n_models, n_token, n_context).to(self.device)
        self.scaler = Standardiser(n_models, n_token, n_context, self.device)
        self.buffer = SampleBuffer(
            config.buffer_size, n_models, n_token, n_context, config.val_split, self.device
        )
        self.trainer = FusionTrainer(config, self.network, self.buffer, self.scaler)
        self._rows = RowEncoder(n_models, self.extra_features, self.context_features)
        self._reasons = ReasonLog()
        self.fallback_reason: FallbackReason | None = None
        self.last_attention: F64 = np.zeros(n_models)
        self.samples_rejected = 0
        self.samples_skipped = 0
        self._summary: tuple[tuple[int, int], F64, float] | None = None

    # ------------------------------------------------------------------ predicting

    @property
    def samples_seen(self) -> int:
        return self.buffer.total

    @property
    def is_active(self) -> bool:
        """Whether a forward with the right model count uses the network (not the average)."""
        return self._model_reason(self.n_models) is None

    def forward(
        self, model_outputs: Sequence[ModelOutput], features: Mapping[str, float] | None = None
    ) -> tuple[float, float]:
        """One symbol: (P(up), P(down)), summing to 1."""
        if len(model_outputs) != self.n_models:
            prob = np.array([[out.prob_up for out in model_outputs]], dtype=np.float64)
            result = self._fallback(prob, "wrong_model_count")
        else:
            result = self.forward_batch(*self._rows.encode(model_outputs, features))
        prob_up = float(result.prob_up[0])
        return prob_up, 1.0 - prob_up

    def forward_batch(
        self,
        prob_up: F64,
        confidence: F64,
        extras: F64 | None = None,
        context: F64 | None = None,
    ) -> FusionBatch:
        """B rows at once (symbols or timesteps); row i equals `forward` on row i, bit for bit.

        prob_up, confidence: (B, M), NaN prob_up = missing model; extras: (B, M, E) in
        `extra_features` order; context: (B, C) in `context_features` order (NaN = missing).
        """
        prob = np.asarray(prob_up, dtype=np.float64)
        if prob.ndim != 2:
            raise ValueError(f"prob_up must be (B, M), got shape {prob.shape}")
        reason = self._model_reason(prob.shape[1])
        if reason is not None:
            return self._fallback(prob, reason)
        check_shapes(prob, confidence, extras, context, self._rows)
        fused, attention, missing = self._infer(prob, confidence, extras, context)
        if not missing.any():
            return self._remember(FusionBatch(fused, attention), None)
        self._reasons.note("all_models_missing")  # such rows: 0.5 and all-zero attention
        fused = np.where(missing, 0.5, fused)
        attention = np.where(missing[:, None], 0.0, attention)
        none_answered: FallbackReason | None = "all_models_missing" if missing.all() else None
        return self._remember(FusionBatch(fused, attention), none_answered)

    def _model_reason(self, n_models: int) -> FallbackReason | None:
        if not self.config.enabled:
            return "disabled"
        if n_models != self.n_models:
            return "wrong_model_count"
        if self.samples_seen < self.config.min_samples:
            return "insufficient_samples"
        if self.config.require_beating_average and not self.trainer.beats_average:
            return "not_better_than_average"
        return None

    def _fallback(self, prob: F64, reason: FallbackReason) -> FusionBatch:
        mean, weights = simple_average(prob)
        if (weights.sum(axis=1) == 0).any():
            self._reasons.note("all_models_missing")
        return self._remember(FusionBatch(mean, weights), reason)

    def _remember(self, result: FusionBatch, reason: FallbackReason | None) -> FusionBatch:
        self.fallback_reason = reason
        if reason is not None:
            self._reasons.note(
                reason,
                samples_seen=self.samples_seen,
                min_samples=self.config.min_samples,
                n_models=self.n_models,
                got_models=result.attention.shape[1],
            )
        if len(result.prob_up):
            self.last_attention = result.attention[-1].copy()
        return result

    @torch.inference_mode()
    def _infer(
        self, prob: F64, confidence: F64, extras: F64 | None, context: F64 | None
    ) -> tuple[F64, F64, Bools]:
        """P(up), attention and the all-models-missing mask for B rows, through the network."""
        rows = prob.shape[0]
        tokens = _pad(self._tokens(prob, confidence, extras), MIN_ROWS)
        z, present = self.scaler.token_arrays(tokens)
        ctx = self.scaler.context_array(_pad(self._context_array(context, rows), MIN_ROWS))
        # The key bias and prior logits in numpy (exact values, fewer torch calls); the
        # module call skipped (no hooks): the same ops as `self.network(...)`.
        logits, attention = self.network.forward_masked(
            self._tensor(z),
            self._tensor(key_bias_array(present, self.network.n_fixed)),
            self._tensor(prior_logit_array(tokens)),
            None if ctx is None else self._tensor(ctx),
        )
        logit = logits[:rows].cpu().numpy().astype(np.float64)
        prob_up = 1.0 / (1.0 + np.exp(-np.maximum(logit, -LOGIT_LIMIT)))
        missing = np.logical_not(present[:rows].any(axis=1))
        return prob_up, attention[:rows].cpu().numpy().astype(np.float64), missing

    def _tensor(self, array: npt.NDArray[Any]) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device)

    def _tokens(self, prob: F64, confidence: F64, extras: F64 | None) -> F32:
        extras = np.asarray(extras, np.float64) if self.extra_features else None
        return token_features(prob, np.asarray(confidence, np.float64), extras)

    def _context_array(self, context: F64 | None, rows: int) -> F32:
        if not self.context_features or context is None:
            return np.zeros((rows, 0), dtype=np.float32)
        return finite_f32(np.asarray(context, dtype=np.float64))

    # ------------------------------------------------------------------ learning

    def update(
        self,
        model_outputs: Sequence[ModelOutput],
        features: Mapping[str, float] | None,
        actual_direction: str,
    ) -> None:
        """Record one resolved outcome ("UP"/"DOWN") and train on the configured cadence."""
        label = _label(actual_direction)
        if len(model_outputs) != self.n_models:
            self._reject(1, len(model_outputs))
            return
        prob, confidence, extras, context = self._rows.encode(model_outputs, features)
        self._record(prob, confidence, extras, context, np.array([label], dtype=np.float32))

    def update_batch(
        self,
        prob_up: F64,
        confidence: F64,
        directions: Sequence[str],
        extras: F64 | None = None,
        context: F64 | None = None,
    ) -> None:
        """Record several outcomes in order; same resulting state as `update` for each in turn."""
        labels = np.array([_label(d) for d in directions], dtype=np.float32)
        prob = np.asarray(prob_up, dtype=np.float64)
        if prob.ndim != 2 or prob.shape[0] != len(labels):
            raise ValueError(f"prob_up must be (len(directions), M), got shape {prob.shape}")
        if prob.shape[1] != self.n_models:
            self._reject(len(labels), prob.shape[1])
            return
        check_shapes(prob, confidence, extras, context, self._rows)
        self._record(prob, confidence, extras, context, labels)

    def updates_until_change(self) -> int:
        """Recorded outcomes after which `forward` may answer differently (>= 1).

        The output is a pure function of the inputs until the next training step or the
        switch from the average to the network at `min_samples`; the k-th further sample
        is the first that may change it. The engine batches decisions across the k - 1
        before it. A skipped or rejected sample counts nothing here, so counting it on
        the caller's side only makes the estimate more cautious. `sys.maxsize`: never.
        """
        if not self.config.enabled:
            return NEVER
        seen = self.samples_seen
        until = self.trainer.samples_until_step(seen)
        if seen < self.config.min_samples:
            until = min(until, self.config.min_samples - seen)
        return until

    def _reject(self, count: int, got: int) -> None:
        self.samples_rejected += count
        self._reasons.note_sample_rejected(self.n_models, got)

    def _record(
        self, prob: F64, confidence: F64, extras: F64 | None, context: F64 | None, labels: F32
    ) -> None:
        tokens = self._tokens(prob, confidence, extras)
        ctx = self._context_array(context, len(labels))
        keep = (tokens[:, :, 0] == tokens[:, :, 0]).any(axis=1)  # no model at all: nothing to learn
        self.samples_skipped += int((~keep).sum())
        tokens, ctx, labels = tokens[keep], ctx[keep], labels[keep]
        every, start = self.config.train_every, 0
        while start < len(labels):
            end = min(len(labels), start + every - self.buffer.total % every)
            self.buffer.append(tokens[start:end], ctx[start:end], labels[start:end])
            if self.buffer.total % every == 0 and self.config.enabled:
                self.trainer.maybe_step(self.buffer.total)
            start = end

    # ------------------------------------------------------------------ reporting

    def get_training_stats(self) -> TrainingStats:
        trainer, stopper = self.trainer, self.trainer.stopper
        return TrainingStats(
            samples_seen=self.samples_seen,
            samples_trained=trainer.steps * self.config.batch_size,
            train_steps=trainer.steps,
            train_loss=trainer.train_loss,
            val_loss=trainer.val_loss,
            average_val_loss=trainer.average_val_loss,
            best_val_loss=stopper.best,
            current_lr=trainer.current_lr,
            grad_norm=trainer.grad_norm,
            is_overfitting=stopper.paused,
            early_stops=stopper.triggered_count,
            patience_counter=stopper.counter,
            avg_attention_entropy=self._attention_summary()[1],
            buffer_train=self.buffer.n_train,
            buffer_val=self.buffer.n_val,
            samples_rejected=self.samples_rejected,
            samples_skipped=self.samples_skipped,
            active=self.is_active,
            fallback_reason=self.fallback_reason,
        )

    def get_attention_weights(self) -> dict[str, float]:
        """Mean attention the decision pays each model on the newest buffered samples (sum 1)."""
        return _named(self._attention_summary()[0])

    def get_last_attention_weights(self) -> dict[str, float]:
        """Weights of the latest forward's last row (the averaging weights when it fell back)."""
        return _named(self.last_attention)

    def _attention_summary(self) -> tuple[F64, float]:
        """(mean attention (M,), mean per-row entropy in nats), cached until the state changes."""
        key = (self.samples_seen, self.trainer.steps)
        if self._summary is None or self._summary[0] != key:
            self._summary = (key, *self.trainer.attention_summary(ATTENTION_WINDOW))
        return self._summary[1], self._summary[2]

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    def memory_bytes(self) -> dict[str, int]:
        """Bytes of the weights, the training state (gradient, moments, snapshot), the buffer."""
        params = sum(p.numel() * p.element_size() for p in self.network.parameters())
        optimizer = self.trainer.optimizer.nbytes() + params  # + the best-weight snapshot
        return {"model": params, "optimizer": optimizer, "buffer": self.buffer.nbytes()}

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> None:
        """Write `fusion_model.pt` and `fusion_state.json` (atomically, with a checksum)."""
        persistence.save(self, Path(directory))

    def load(self, directory: str | Path) -> None:
        """Restore the full state written by `save` (weights, optimizer, buffers, stats, RNG)."""
        persistence.load(self, Path(directory))
        self._summary = None


def _label(direction: str) -> float:
    try:
        return LABELS[direction]
    except (KeyError, TypeError):
        raise ValueError(f"actual_direction must be 'UP' or 'DOWN', got {direction!r}") from None


def _pad(array: F32, rows: int) -> F32:
    if array.shape[0] >= rows:
        return array
    padded = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    padded[: array.shape[0]] = array
    return padded


def _named(weights: F64) -> dict[str, float]:
    return {f"model_{i}": float(w) for i, w in enumerate(weights)}
