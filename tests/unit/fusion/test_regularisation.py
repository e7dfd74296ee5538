"""Each of the seven overfitting defences, observed in action."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.unit.fusion.helpers import Stream, feed, informative_stream, make_fusion, params
from titan.config.fusion import FusionConfig
from titan.fusion.inputs import prior_logits
from titan.fusion.schedule import Verdict, lr_at

NEVER = 10**9  # train_every that never trains: fill the buffer, then step by hand


def _filled(stream: Stream, **overrides: object):
    fusion = make_fusion(train_every=NEVER, **overrides)
    feed(fusion, stream)
    fusion.scaler.fit(*fusion.buffer.train_region())
    return fusion


# 1. dropout -------------------------------------------------------------------------------


def test_dropout_is_active_in_training_only() -> None:
    fusion = _filled(informative_stream(100), dropout=0.5)
    tokens, _, labels = fusion.buffer.gather(torch.arange(64))
    z, present = fusion.scaler.tokens(tokens)
    prior = prior_logits(tokens)
    net, gen = fusion.network, torch.Generator().manual_seed(0)
    with torch.no_grad():
        evaluated = net(z, present, prior)[0]
        assert torch.equal(evaluated, net(z, present, prior)[0])
        first, second = net(z, present, prior, None, gen)[0], net(z, present, prior, None, gen)[0]
    assert not torch.equal(first, second) and not torch.equal(first, evaluated)
    loss_a, _ = fusion.trainer.compute_gradients(tokens, torch.zeros(64, 0), labels)
    loss_b, _ = fusion.trainer.compute_gradients(tokens, torch.zeros(64, 0), labels)
    assert loss_a != loss_b  # the trainer's forward uses dropout
    no_dropout = _filled(informative_stream(100), dropout=0.0)
    with torch.no_grad():
        net0 = no_dropout.network
        assert torch.equal(net0(z, present, prior, None, gen)[0], net0(z, present, prior)[0])


# 2. L2 weight decay -------------------------------------------------------------------------


def test_weight_decay_shrinks_weight_matrices_by_lr_times_lambda() -> None:
    stream = informative_stream(100)
    plain = _filled(stream, l2_lambda=0.0, warmup_steps=0)
    decayed = _filled(stream, l2_lambda=0.5, warmup_steps=0)
    before = params(plain)
    plain.trainer.step(100)
    decayed.trainer.step(100)  # same batch, same dropout: only the decay differs
    shrink = lr_at(1, decayed.config) * 0.5
    names = [name for name, _ in decayed.network.named_parameters()]
    matrices = {id(p) for p in decayed.network.decayed_parameters()}
    for name, w0, a, b in zip(
        names, before, plain.network.parameters(), decayed.network.parameters(), strict=True
    ):
        if id(b) in matrices:
            torch.testing.assert_close(b - a, -shrink * w0, rtol=0.02, atol=3e-7, msg=name)
        else:
            assert torch.equal(a, b), name  # biases, norms, embeddings: no decay
    assert set(decayed.trainer.optimizer.decay.tolist()) == {0.5, 0.0}


# 3. early stopping --------------------------------------------------------------------------


def _noise_stream(n: int, seed: int = 0) -> Stream:
    """Random inputs, random labels: memorisable, impossible to generalise."""
    rng = np.random.default_rng(seed)
    return Stream(rng.uniform(0, 1, (n, 4)), rng.uniform(0, 1, (n, 4)), rng.random(n) < 0.5)


def test_memorisable_stream_trips_early_stopping_and_restores_best_weights() -> None:
    stream = _noise_stream(400)
    fusion = make_fusion(
        buffer_size=80,
        val_split=0.4,
        batch_size=16,
        min_samples=0,
        dropout=0.0,
        l2_lambda=0.0,
        learning_rate=0.01,
        warmup_steps=0,
        early_stopping_patience=5,
        early_stopping_delta=0.0,
        val_every=1,
    )
    i = 0
    while fusion.get_training_stats()["early_stops"] == 0:
        assert i < 300, "early stopping never triggered on pure noise"
        feed(fusion, stream.rows(i, i + 1))
        i += 1
    stats = fusion.get_training_stats()
    assert stats["is_overfitting"] and stats["patience_counter"] == 5
    assert stats["val_loss"] > stats["best_val_loss"]
    assert torch.equal(fusion.trainer.optimizer.flat, fusion.trainer.best_weights)  # restored
    flat = torch.cat([p.detach().reshape(-1) for p in fusion.network.parameters()])
    assert torch.equal(flat, fusion.trainer.best_weights)  # the network sees the restored weights
    steps, n_val = stats["train_steps"], stats["buffer_val"]
    feed(fusion, stream.rows(i, i + n_val - 1))
    assert fusion.trainer.steps == steps  # paused while the validation window renews
    feed(fusion, stream.rows(i + n_val - 1, i + n_val))
    resumed = fusion.get_training_stats()
    assert resumed["train_steps"] == steps + 1 and not resumed["is_overfitting"]
    assert resumed["patience_counter"] == 0 and resumed["best_val_loss"] == resumed["val_loss"]


def test_patience_counter_never_exceeds_patience() -> None:
    """The design run showed a counter of 98 with patience 50 and no stop: not here."""
    fusion = make_fusion(buffer_size=80, batch_size=16, min_samples=0, early_stopping_patience=7)
    stream = _noise_stream(600, seed=3)
    for i in range(600):
        feed(fusion, stream.rows(i, i + 1))
        assert fusion.trainer.stopper.counter <= 7


def test_improvement_within_delta_does_not_reset_patience() -> None:
    """A loss must beat the best by more than early_stopping_delta to count as progress."""
    stopper = make_fusion(early_stopping_patience=3, early_stopping_delta=0.01).trainer.stopper
    assert stopper.observe(0.500, 100, 20) is Verdict.IMPROVED  # the first sets the baseline
    assert stopper.observe(0.495, 101, 20) is Verdict.NO_IMPROVEMENT  # better, by < delta
    assert (stopper.counter, stopper.best) == (1, 0.500)
    assert stopper.observe(0.489, 102, 20) is Verdict.IMPROVED  # better by > delta
    assert (stopper.counter, stopper.best) == (0, 0.489)
    # a slow creep, each step below delta (and all within delta of the best), still stops
    assert stopper.observe(0.485, 103, 20) is Verdict.NO_IMPROVEMENT
    assert stopper.observe(0.482, 104, 20) is Verdict.NO_IMPROVEMENT
    assert stopper.observe(0.480, 105, 20) is Verdict.TRIGGERED
    assert stopper.best == 0.489 and stopper.paused


# 4 + 5. LR warm-up and cosine decay -------------------------------------------------------


def test_lr_schedule_values_at_known_steps() -> None:
    config = FusionConfig(
        learning_rate=1e-3, warmup_steps=100, lr_decay_steps=1000, min_lr_ratio=0.1
    )
    assert lr_at(1, config) == pytest.approx(1e-5)
    assert lr_at(50, config) == pytest.approx(5e-4)
    assert lr_at(100, config) == pytest.approx(1e-3)
    assert lr_at(600, config) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way down the cosine
    assert lr_at(1100, config) == pytest.approx(1e-4)
    assert lr_at(50_000, config) == pytest.approx(1e-4)  # floor: keeps adapting
    warm = [lr_at(s, config) for s in range(1, 101)]
    decay = [lr_at(s, config) for s in range(100, 1101)]
    assert warm == sorted(warm) and decay == sorted(decay, reverse=True)


def test_trainer_applies_the_scheduled_lr() -> None:
    fusion = make_fusion(warmup_steps=100, min_samples=0)
    feed(fusion, informative_stream(75))  # first step at 39 samples (32 train + 7 val)
    steps = fusion.trainer.steps
    assert steps == 37
    assert fusion.trainer.optimizer.lr == pytest.approx(1e-3 * 37 / 100)
    assert fusion.get_training_stats()["current_lr"] == pytest.approx(1e-3 * 38 / 100)


# 6. gradient clipping ------------------------------------------------------------------------


def _grad_norm(fusion) -> float:
    grads = [p.grad.norm() for p in fusion.network.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(grads)))


@pytest.mark.parametrize("clip", [1e-3, 0.05])
def test_gradient_clipping_bounds_the_gradient_norm(clip: float) -> None:
    fusion = _filled(informative_stream(100), gradient_clip=clip)
    _, pre_clip = fusion.trainer.compute_gradients(*fusion.trainer.sample_batch())
    assert pre_clip > clip
    assert _grad_norm(fusion) <= clip * (1 + 1e-5)
    assert _grad_norm(fusion) == pytest.approx(clip, rel=1e-4)


def test_gradient_below_the_clip_is_untouched() -> None:
    fusion = _filled(informative_stream(100), gradient_clip=1e6)
    _, pre_clip = fusion.trainer.compute_gradients(*fusion.trainer.sample_batch())
    assert _grad_norm(fusion) == pytest.approx(pre_clip, rel=1e-5)


@pytest.mark.parametrize("norm", [0.5, 1.0 - 1e-6, 1.0 - 1e-7, 1.0, 1.0 + 1e-7, 3.0])
def test_clipping_is_bit_identical_to_torch_near_the_threshold(norm: float) -> None:
    """The flat clip skips its scaling ops well below max_norm: never where torch would scale."""
    optimizer = make_fusion().trainer.optimizer
    grad = torch.randn(optimizer.grad.numel(), generator=torch.Generator().manual_seed(1))
    optimizer.grad.copy_(grad / torch.linalg.vector_norm(grad) * norm)
    reference = torch.nn.Parameter(torch.zeros_like(grad))
    reference.grad = optimizer.grad.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_([reference], 1.0)
    assert optimizer.clip_grad_norm(1.0) == expected_norm.item()
    assert torch.equal(optimizer.grad, reference.grad)


# 7. chronological validation split -----------------------------------------------------------


def test_validation_is_the_newest_fraction_and_never_trained_on() -> None:
    stream = informative_stream(130, seed=4)
    fusion = _filled(stream, buffer_size=100, val_split=0.2)  # ring wrapped: holds 30..129
    assert (fusion.buffer.n_train, fusion.buffer.n_val) == (80, 20)
    val_tokens = fusion.buffer.tokens[fusion.buffer.val_slots()]
    np.testing.assert_allclose(val_tokens[:, :, 0].numpy(), stream.prob[110:130] - 0.5, rtol=1e-6)
    centred = (stream.prob[:, 0] - 0.5).astype(np.float32)  # the token's first column
    train_keys, val_keys = set(centred[30:110].tolist()), set(centred[110:130].tolist())
    for _ in range(200):
        tokens, _, _ = fusion.trainer.sample_batch()
        drawn = set(tokens[:, 0, 0].numpy().tolist())
        assert drawn <= train_keys and not drawn & val_keys


def test_validation_samples_cannot_change_the_training_step() -> None:
    """Poison the validation window (inputs and labels): the trained weights are unchanged."""
    stream = informative_stream(150, seed=9)
    poisoned = Stream(stream.prob.copy(), stream.confidence.copy(), stream.up.copy())
    poisoned.prob[120:] = 1.0 - poisoned.prob[120:]
    poisoned.up[120:] = ~poisoned.up[120:]
    clean_fusion, poisoned_fusion = _filled(stream), _filled(poisoned)
    assert clean_fusion.buffer.n_val == 30
    for fusion in (clean_fusion, poisoned_fusion):
        for _ in range(5):
            fusion.trainer.step(150)
    for a, b in zip(params(clean_fusion), params(poisoned_fusion), strict=True):
        assert torch.equal(a, b)
    clean_val, poisoned_val = (f.trainer.validation_loss() for f in (clean_fusion, poisoned_fusion))
    assert clean_val != poisoned_val  # only the validation window itself differs
