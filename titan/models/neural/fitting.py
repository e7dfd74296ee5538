"""The training loop for one network: pure computation, no logging, no clock.

Mini-batch AdamW over the (chronologically earlier) training part, the sample order
reshuffled each epoch *inside* that part (the split itself is never shuffled across
time); gradient-norm clipping; a cosine (with linear warm-up), plateau or constant
learning-rate schedule; validation on the newest held-out part every ``eval_every``
steps and at each epoch's end; early stopping after ``patience`` validations without a
``min_delta`` gain, restoring the best validated weights. Seeded: the same seed, data
and device give the same weights (one CPU thread: bit for bit). Progress is reported
through an optional callback, one `EvalRecord` per validation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from titan.config.training import TrainerConfig

LossName = Literal["huber", "mse", "bce"]
_MIN_LR_RATIO = 0.05
_PLATEAU_FACTOR = 0.5


@dataclass(frozen=True, slots=True)
class EvalRecord:
    step: int
    epoch: int
    train_loss: float
    val_loss: float
    lr: float


@dataclass(slots=True)
class FitHistory:
    records: list[EvalRecord] = field(default_factory=list)
    best_step: int = 0
    best_val: float = math.inf
    steps: int = 0
    stopped_early: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "records": [list(_record_tuple(r)) for r in self.records],
            "best_step": self.best_step,
            "best_val": self.best_val,
            "steps": self.steps,
            "stopped_early": self.stopped_early,
        }


def _record_tuple(r: EvalRecord) -> tuple[float, ...]:
    return (r.step, r.epoch, r.train_loss, r.val_loss, r.lr)


def output_of(net: nn.Module, x: Tensor) -> Tensor:
    """A network's prediction as a flat (B,) tensor (tuple outputs: their first item)."""
    out = net(x)
    if isinstance(out, tuple):
        out = out[0]
    return out.reshape(-1)  # type: ignore[no-any-return]


def loss_fn(name: LossName, prediction: Tensor, target: Tensor) -> Tensor:
    if name == "bce":
        return F.binary_cross_entropy_with_logits(prediction, target)
    if name == "mse":
        return F.mse_loss(prediction, target)
    return F.huber_loss(prediction, target, delta=1.0)


def predict_chunks(net: nn.Module, x: Tensor, chunk: int) -> Tensor:
    """Eval-mode predictions (B,) in chunks of `chunk` rows (no gradients)."""
    was_training = net.training
    if was_training:  # switching modes walks every submodule: only when needed
        net.eval()
    try:
        with torch.inference_mode():
            parts = [output_of(net, x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
    finally:
        if was_training:
            net.train()
    return torch.cat(parts) if parts else x.new_zeros(0)


@dataclass
class _State:
    history: FitHistory
    best: dict[str, Tensor] | None = None
    bad_evals: int = 0
    running: list[float] = field(default_factory=list)


class _Schedule:
    def __init__(self, config: TrainerConfig, total: int) -> None:
        self.config, self.total, self.scale = config, max(total, 1), 1.0

    def lr(self, step: int) -> float:
        base = self.config.learning_rate * self.scale
        if self.config.schedule != "cosine":
            return base
        warm = min(1.0, (step + 1) / self.config.warmup_steps) if self.config.warmup_steps else 1.0
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(step / self.total, 1.0)))
        return base * warm * (_MIN_LR_RATIO + (1.0 - _MIN_LR_RATIO) * cosine)

    def on_no_gain(self) -> None:
        if self.config.schedule == "plateau":
            self.scale *= _PLATEAU_FACTOR


def train_network(
    net: nn.Module,
    train: tuple[Tensor, Tensor],
    valid: tuple[Tensor, Tensor],
    loss: LossName,
    config: TrainerConfig,
    seed: int,
    on_eval: Callable[[EvalRecord], None] | None = None,
) -> FitHistory:
    """Train `net` in place on ``train = (x, y)``; keep the weights best on `valid`."""
    x = train[0]
    batch = min(config.batch_size, x.shape[0])
    per_epoch = max(x.shape[0] // batch, 1)
    total = min(config.max_steps, config.max_epochs * per_epoch)
    schedule = _Schedule(config, total)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=schedule.lr(0), weight_decay=config.weight_decay)
    state = _State(FitHistory())
    order = np.random.default_rng(seed)
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        net.train()
        step = 0
        while step < total and not state.history.stopped_early:
            perm = torch.from_numpy(order.permutation(x.shape[0])).to(x.device)
            epoch = step // per_epoch
            for b in range(per_epoch):
                index = perm[b * batch : (b + 1) * batch]
                _step(net, optimiser, trainable, (x[index], train[1][index]), loss, config, state)
                step += 1
                for group in optimiser.param_groups:
                    group["lr"] = schedule.lr(step)
                if step % config.eval_every == 0 or step >= total or b == per_epoch - 1:
                    record = _validate(net, valid, loss, config, (step, epoch), optimiser, state)
                    if on_eval is not None:
                        on_eval(record)
                    _judge(record, config, state, net, schedule)
                if step >= total or state.history.stopped_early:
                    break
    if state.best is not None:
        net.load_state_dict(state.best)
    net.eval()
    state.history.steps = step
    return state.history


def _step(
    net: nn.Module,
    optimiser: torch.optim.Optimizer,
    trainable: list[nn.Parameter],
    batch: tuple[Tensor, Tensor],
    loss: LossName,
    config: TrainerConfig,
    state: _State,
) -> None:
    value = loss_fn(loss, output_of(net, batch[0]), batch[1])
    optimiser.zero_grad(set_to_none=True)
    value.backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
    optimiser.step()
    state.running.append(float(value.detach()))


def _validate(
    net: nn.Module,
    valid: tuple[Tensor, Tensor],
    loss: LossName,
    config: TrainerConfig,
    when: tuple[int, int],
    optimiser: torch.optim.Optimizer,
    state: _State,
) -> EvalRecord:
    prediction = predict_chunks(net, valid[0], config.eval_batch)
    val_loss = float(loss_fn(loss, prediction, valid[1]))
    train_loss = float(np.mean(state.running)) if state.running else math.nan
    state.running.clear()
    lr = float(optimiser.param_groups[0]["lr"])
    record = EvalRecord(when[0], when[1], train_loss, val_loss, lr)
    state.history.records.append(record)
    return record


def _judge(
    record: EvalRecord, config: TrainerConfig, state: _State, net: nn.Module, schedule: _Schedule
) -> None:
    """Keep the weights if validation improved; count a miss (and maybe stop) otherwise."""
    history = state.history
    if math.isfinite(record.val_loss) and record.val_loss < history.best_val - config.min_delta:
        history.best_val, history.best_step = record.val_loss, record.step
        state.best = copy.deepcopy(net.state_dict())
        state.bad_evals = 0
        return
    state.bad_evals += 1
    schedule.on_no_gain()
    history.stopped_early = state.bad_evals >= config.patience
