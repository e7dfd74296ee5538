"""Online learning: the loss moves, attention learns the informative model, cadence is exact."""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

from tests.unit.fusion.helpers import (
    feed,
    informative_stream,
    log_loss,
    make_fusion,
    params,
    rich_stream,
)
from titan.fusion import TransformerFusion


def test_online_learning_reduces_the_loss_on_unseen_samples() -> None:
    """The untrained network answers with the models' consensus; learning beats it."""
    stream = informative_stream(1400, seed=5)
    held_out = stream.rows(1200, 1400)
    fusion = make_fusion(min_samples=100)
    untrained = make_fusion(min_samples=0).forward_batch(held_out.prob, held_out.confidence)
    before = params(fusion)
    feed(fusion, stream.rows(0, 1200))
    trained = fusion.forward_batch(held_out.prob, held_out.confidence)
    stats = fusion.get_training_stats()
    assert stats["train_steps"] > 300
    assert stats["samples_trained"] == stats["train_steps"] * 32
    assert _log_loss(trained.prob_up, held_out.up) < _log_loss(untrained.prob_up, held_out.up) - 0.1
    assert stats["train_loss"] < math.log(2)
    assert any(not torch.equal(a, b) for a, b in zip(before, params(fusion), strict=True))


def _log_loss(prob: np.ndarray, up: np.ndarray) -> float:
    p = np.clip(prob, 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(up, np.log(p), np.log1p(-p))))


def test_attention_learns_the_informative_model_and_beats_the_average() -> None:
    """One informative model among noise: it gets the largest attention, log loss < average."""
    stream = informative_stream(3000, seed=11)
    fusion = make_fusion(min_samples=200, train_every=2)
    predicted = []
    for lo in range(0, 3000, 50):  # prequential: predict a block, then learn from it
        block = stream.rows(lo, lo + 50)
        predicted.extend(fusion.forward_batch(block.prob, block.confidence).prob_up)
        feed(fusion, block)
    predicted_arr = np.array(predicted)
    late = slice(2000, 3000)
    fusion_loss = log_loss(predicted_arr[late], stream.up[late])
    average_loss = log_loss(stream.prob[late].mean(axis=1), stream.up[late])
    assert fusion_loss < average_loss - 0.1
    weights = fusion.get_attention_weights()
    assert max(weights, key=lambda name: weights[name]) == "model_0"
    assert weights["model_0"] > 0.4
    assert sum(weights.values()) == np.float64(1.0) or abs(sum(weights.values()) - 1) < 1e-12
    entropy = fusion.get_training_stats()["avg_attention_entropy"]
    assert entropy < math.log(4) - 0.2  # not the uniform 1.3863 of the design document's run


def _state(fusion: TransformerFusion) -> list[torch.Tensor]:
    trainer = fusion.trainer
    tensors = params(fusion) + list(trainer.optimizer.state().values())
    tensors += list(fusion.buffer.state().values()) + list(fusion.scaler.state().values())
    return [*tensors, trainer.best_weights, trainer.generator.get_state()]


def test_update_batch_equals_one_by_one_updates() -> None:
    stream = rich_stream(400, seed=7)
    one = make_fusion(stream, min_samples=50, train_every=3, buffer_size=150)
    for i in range(400):
        one.update(stream.outputs(i), stream.features(i), stream.directions[i])
    chunked = make_fusion(stream, min_samples=50, train_every=3, buffer_size=150)
    rng = np.random.default_rng(0)
    lo = 0
    while lo < 400:
        hi = min(400, lo + int(rng.integers(1, 40)))
        feed(chunked, stream.rows(lo, hi))
        lo = hi
    for a, b in zip(_state(one), _state(chunked), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # bit-identical
    assert one.get_training_stats() == chunked.get_training_stats()


def test_train_every_sets_the_training_cadence() -> None:
    stream = informative_stream(500, seed=2)
    fusion = make_fusion(train_every=5, val_split=0.2, batch_size=32)
    feed(fusion, stream.rows(0, 500))
    # a step at every 5th sample once the training region holds a batch (40 samples: 32 train)
    assert fusion.trainer.steps == len(range(40, 501, 5))


def test_updates_until_change_marks_exactly_when_the_output_can_change() -> None:
    """The engine batches decisions across the k - 1 updates that cannot change the output."""
    stream = informative_stream(900, seed=8)
    fusion = make_fusion(
        min_samples=60, train_every=5, val_every=1, early_stopping_patience=3, buffer_size=200
    )
    probe = stream.rows(850, 900)
    i, paused_seen = 0, False
    while i < 800:
        k = fusion.updates_until_change()
        before = fusion.forward_batch(probe.prob, probe.confidence).prob_up
        feed(fusion, stream.rows(i, i + k - 1))
        i += k - 1
        assert fusion.updates_until_change() == 1
        after = fusion.forward_batch(probe.prob, probe.confidence).prob_up
        np.testing.assert_array_equal(after, before)
        steps, active = fusion.trainer.steps, fusion.is_active
        feed(fusion, stream.rows(i, i + 1))
        i += 1
        assert fusion.trainer.steps == steps + 1 or fusion.is_active != active
        paused_seen |= fusion.trainer.stopper.paused
    assert paused_seen  # the walk crossed an early-stopping pause
    assert make_fusion(enabled=False).updates_until_change() == sys.maxsize
