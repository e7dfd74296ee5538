"""`FusionTrainer`: mini-batch online training with the overfitting defences.

One `step`: draw a mini-batch uniformly (with replacement) from the training region of the
buffer only, BCE loss on P(up) with dropout on, backward, clip the global gradient norm to
`gradient_clip`, AdamW with the scheduled LR and decoupled weight decay `l2_lambda` on the
weight matrices (`FlatAdamW`). The input standardiser is refitted on the training region
at the first step and every `SCALER_REFIT_EVERY` steps. Every `val_every` steps the
validation loss (dropout off) feeds early stopping, which snapshots the best weights and,
when it triggers, restores them and pauses training (`titan.fusion.schedule`).
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import structlog
import torch
import torch.nn.functional as F
from torch import Tensor

from titan.config.fusion import FusionConfig
from titan.fusion.buffer import SampleBuffer
from titan.fusion.inputs import prior_logits
from titan.fusion.network import FusionNetwork
from titan.fusion.optim import FlatAdamW
from titan.fusion.scaling import Standardiser
from titan.fusion.schedule import EarlyStopping, Verdict, lr_at

LOSS_EMA = 0.05  # weight of the newest mini-batch in the reported train loss
SCALER_REFIT_EVERY = 64  # steps between refits of the input standardiser
NEVER = sys.maxsize

Batch = tuple[Tensor, Tensor, Tensor]  # raw tokens (B, M, F), context (B, C), labels (B,)


class NetworkInputs(NamedTuple):
    """`FusionNetwork.forward`'s inputs, in its argument order."""

    tokens: Tensor  # (B, M, F) standardised
    present: Tensor  # (B, M) bool
    prior: Tensor  # (B, M) the models' raw logits
    context: Tensor | None  # (B, 2C) standardised values and presence flags


class FusionTrainer:
    def __init__(
        self,
        config: FusionConfig,
        network: FusionNetwork,
        buffer: SampleBuffer,
        scaler: Standardiser,
    ) -> None:
        self.config = config
        self.network = network
        self.buffer = buffer
        self.scaler = scaler
        self.generator = torch.Generator(device=buffer.device)
        self.generator.manual_seed(config.seed)
        self.optimizer = FlatAdamW(
            list(network.parameters()), network.decayed_parameters(), config.l2_lambda
        )
        self.stopper = EarlyStopping(config.early_stopping_patience, config.early_stopping_delta)
        self.best_weights = self.optimizer.flat.clone()
        self.steps = 0
        self.train_loss = math.nan
        self.val_loss = math.nan
        self.average_val_loss = math.nan  # the models' simple average on the same samples
        self.grad_norm = math.nan

    @property
    def current_lr(self) -> float:
        """The LR the next step will use."""
        return lr_at(self.steps + 1, self.config)

    def maybe_step(self, samples_seen: int) -> bool:
        """Train one mini-batch if the buffer allows it and early stopping is not pausing."""
        if self.buffer.n_train < self.config.batch_size:
            return False
        if not self.stopper.may_train(samples_seen):
            return False
        self.step(samples_seen)
        return True

    def samples_until_step(self, samples_seen: int) -> int:
        """How many more recorded samples until the next training step can happen.

        Counts cadence points (`train_every`), the buffer filling to one training batch and
        an early-stopping pause; `NEVER` when the buffer can never hold a batch.
        """
        every, cap = self.config.train_every, self.buffer.capacity
        if cap - int(cap * self.buffer.val_split) < self.config.batch_size:
            return NEVER
        first = samples_seen + every - samples_seen % every
        if self.stopper.paused and first < self.stopper.resume_at:
            first += -(-(self.stopper.resume_at - first) // every) * every  # ceil to cadence
        while not self._batch_fits(first):
            first += every
        return first - samples_seen

    def _batch_fits(self, samples: int) -> bool:
        size = min(samples, self.buffer.capacity)
        return size - int(size * self.buffer.val_split) >= self.config.batch_size

    def step(self, samples_seen: int) -> None:
        self.refit_scaler_if_due()
        loss, self.grad_norm = self.compute_gradients(*self.sample_batch())
        self.apply_gradients()
        if math.isnan(self.train_loss):
            self.train_loss = loss
        else:
            self.train_loss += LOSS_EMA * (loss - self.train_loss)
        if self.buffer.n_val and self.steps % self.config.val_every == 0:
            self.validate(samples_seen)

    def refit_scaler_if_due(self) -> None:
        if self.steps % SCALER_REFIT_EVERY == 0:
            self.scaler.fit(*self.buffer.train_region())

    def sample_batch(self) -> Batch:
        """A mini-batch of raw samples drawn from the (older) training region only."""
        slots = self.buffer.random_train_slots(self.config.batch_size, self.generator)
        return self.buffer.gather(slots)

    def compute_gradients(
        self, tokens: Tensor, context: Tensor, labels: Tensor
    ) -> tuple[float, float]:
        """Forward with dropout, BCE, backward, clipping; returns (loss, pre-clip grad norm)."""
        loss = self.training_loss(self.network_inputs(tokens, context), labels)
        self.backward(loss)
        return loss.item(), self.optimizer.clip_grad_norm(self.config.gradient_clip)

    def network_inputs(self, tokens: Tensor, context: Tensor) -> NetworkInputs:
        """Raw buffer rows -> the network's inputs (standardised tokens and context)."""
        z, present = self.scaler.tokens(tokens)
        return NetworkInputs(z, present, prior_logits(tokens), self.scaler.context(context))

    def training_loss(self, inputs: NetworkInputs, labels: Tensor) -> Tensor:
        """Mean BCE of a forward pass with dropout on."""
        logits, _ = self.network(*inputs, self.generator)
        return F.binary_cross_entropy_with_logits(logits, labels)

    def backward(self, loss: Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]

    def apply_gradients(self) -> None:
        self.steps += 1
        self.optimizer.step(lr_at(self.steps, self.config), self.steps)

    @torch.inference_mode()
    def validation_loss(self, batch: Batch | None = None) -> float:
        """BCE of the network on the validation samples (`batch`: them, already gathered)."""
        tokens, context, labels = self.validation_batch() if batch is None else batch
        logits, _ = self.network(*self.network_inputs(tokens, context))
        return F.binary_cross_entropy_with_logits(logits, labels).item()

    def validation_batch(self) -> Batch:
        """Raw tokens, context and labels of the validation region."""
        return self.buffer.gather(self.buffer.val_slots())

    def stopping_armed(self, samples_seen: int) -> bool:
        """Early stopping judges only once the fusion decides (min_samples) on a val batch."""
        enough_val = self.buffer.n_val >= self.config.batch_size
        return enough_val and samples_seen >= self.config.min_samples

    @property
    def beats_average(self) -> bool:
        """The network's last validation loss is below the simple average's on those samples."""
        return self.val_loss < self.average_val_loss

    @torch.inference_mode()
    def average_validation_loss(self, batch: Batch | None = None) -> float:
        """BCE of the models' simple average on the validation samples."""
        tokens, _, labels = self.validation_batch() if batch is None else batch
        prob = tokens[..., 0].double() + 0.5  # raw prob_up - 0.5, NaN where missing
        present = ~torch.isnan(prob)
        mean = torch.where(present, prob, 0.0).sum(1) / present.sum(1).clamp_min(1)
        mean = torch.where(present.any(1), mean, 0.5).clamp(1e-7, 1 - 1e-7)
        return F.binary_cross_entropy(mean, labels.double()).item()

    def validate(self, samples_seen: int) -> None:
        batch = self.validation_batch()
        self.val_loss = self.validation_loss(batch)
        self.average_val_loss = self.average_validation_loss(batch)
        if not self.stopping_armed(samples_seen):
            return
        verdict = self.stopper.observe(self.val_loss, samples_seen, self.buffer.n_val)
        if verdict is Verdict.IMPROVED:
            self.best_weights.copy_(self.optimizer.flat)
        elif verdict is Verdict.TRIGGERED:
            self.optimizer.flat.copy_(self.best_weights)
            structlog.get_logger(__name__).info(
                "fusion_early_stop",
                step=self.steps,
                val_loss=self.val_loss,
                best_val_loss=self.stopper.best,
                resume_at_sample=self.stopper.resume_at,
            )

    @torch.inference_mode()
    def attention_summary(self, window: int) -> tuple[npt.NDArray[np.float64], float]:
        """Mean decision attention per model over the newest `window` samples (sums to 1) and
        the mean per-sample attention entropy in nats; uniform before any sample."""
        n_models = self.network.n_models
        if self.buffer.size == 0:
            return np.full(n_models, 1.0 / n_models), math.log(n_models)
        tokens, context, _ = self.buffer.gather(self.buffer.newest_slots(window))
        z, present = self.scaler.tokens(tokens)
        attention = self.network.attention(z, present, self.scaler.context(context))
        rows = attention.double().cpu().numpy()
        entropy = -(rows * np.log(np.where(rows > 0, rows, 1.0))).sum(axis=1)
        mean = rows.mean(axis=0)
        return mean / mean.sum(), float(entropy.mean())
