"""The training loop: learning, early stopping, best-weight restore, schedules, clipping."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from torch import nn

from titan.config.training import TrainerConfig
from titan.models.neural.fitting import (
    EvalRecord,
    _Schedule,
    loss_fn,
    predict_chunks,
    train_network,
)


def _task(n: int, seed: int, sign: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """y = sign * mean of feature 0 over the window (a learnable, noise-free target)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, 3, generator=g)
    return x, sign * x[:, :, 0].mean(dim=1) * 3.0


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 1))


def _val_loss(net: nn.Module, valid: tuple[torch.Tensor, torch.Tensor]) -> float:
    return float(loss_fn("mse", predict_chunks(net, valid[0], 1000), valid[1]))


def test_training_reduces_validation_loss_and_reports_each_validation() -> None:
    train, valid = _task(512, 0), _task(256, 1)
    net, seen = _net(), []
    before = _val_loss(net, valid)
    config = TrainerConfig(
        max_steps=200, max_epochs=50, eval_every=40, patience=10, batch_size=32, learning_rate=3e-3
    )
    history = train_network(net, train, valid, "mse", config, seed=0, on_eval=seen.append)
    assert _val_loss(net, valid) < 0.3 * before
    assert history.steps == 200 and seen == history.records
    assert all(isinstance(r, EvalRecord) for r in seen)


def test_early_stopping_stops_and_restores_the_best_validated_weights() -> None:
    """Validation targets are the negated training targets: it only gets worse."""
    train, valid = _task(512, 0), _task(256, 1, sign=-1.0)
    net = _net()
    config = TrainerConfig(max_steps=500, eval_every=10, patience=2, batch_size=32)
    history = train_network(net, train, valid, "mse", config, seed=0)
    assert history.stopped_early and history.steps < 500
    assert history.best_step == history.records[0].step
    assert _val_loss(net, valid) == pytest.approx(history.best_val, rel=1e-6)


def test_same_seed_gives_identical_weights_and_another_seed_does_not() -> None:
    train, valid = _task(256, 0), _task(64, 1)
    config = TrainerConfig(max_steps=30, eval_every=10, batch_size=16)
    nets = [_net(), _net(), _net()]
    for net, seed in zip(nets, (5, 5, 6), strict=True):
        train_network(net, train, valid, "mse", config, seed=seed)
    first, second, third = (n.state_dict() for n in nets)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(first[k], third[k]) for k in first)


def test_training_leaves_the_global_rng_alone() -> None:
    net = _net()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_network(net, _task(64, 0), _task(32, 1), "mse", TrainerConfig(max_steps=3), seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_cosine_schedule_warms_up_then_decays_to_a_floor() -> None:
    config = TrainerConfig(learning_rate=1e-2, warmup_steps=10, schedule="cosine")
    schedule = _Schedule(config, total=100)
    rates = [schedule.lr(step) for step in range(101)]
    assert rates[0] < rates[5] < rates[9]
    assert max(rates) <= 1e-2 and rates[100] == pytest.approx(1e-2 * 0.05)
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))


def test_plateau_schedule_halves_on_a_missed_validation_and_constant_does_not() -> None:
    plateau = _Schedule(TrainerConfig(learning_rate=1e-2, schedule="plateau"), total=10)
    plateau.on_no_gain()
    assert plateau.lr(5) == pytest.approx(5e-3)
    constant = _Schedule(TrainerConfig(learning_rate=1e-2, schedule="constant"), total=10)
    constant.on_no_gain()
    assert constant.lr(5) == pytest.approx(1e-2)


def test_gradients_are_clipped_to_the_configured_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    norms: list[float] = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(parameters: Any, max_norm: float, *args: Any, **kwargs: Any) -> torch.Tensor:
        params = list(parameters)
        result = original(params, max_norm, *args, **kwargs)
        norms.append(float(torch.norm(torch.stack([p.grad.norm() for p in params]))))
        return result

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    x, y = _task(64, 0)
    config = TrainerConfig(max_steps=5, grad_clip=0.01, batch_size=16)
    train_network(_net(), (x, y * 1000), _task(32, 1), "mse", config, seed=0)
    assert len(norms) == 5 and max(norms) <= 0.01 * (1 + 1e-4)


@pytest.mark.parametrize("name", ["huber", "mse", "bce"])
def test_losses_are_finite_and_zero_only_at_a_perfect_fit(name: str) -> None:
    target = torch.tensor([0.0, 1.0, 1.0])
    assert float(loss_fn(name, torch.tensor([0.3, 0.2, 0.9]), target)) > 0  # type: ignore[arg-type]
    if name != "bce":
        assert float(loss_fn(name, target, target)) == 0.0  # type: ignore[arg-type]
