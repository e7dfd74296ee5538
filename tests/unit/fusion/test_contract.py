"""Config strictness, the stats/attention contract, robustness to arbitrary inputs, CUDA."""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.unit.fusion.helpers import feed, informative_stream, make_fusion, rich_stream
from titan.config.fusion import FusionConfig
from titan.fusion import TransformerFusion
from titan.fusion.fusion import ATTENTION_WINDOW

SPEC_STATS = {
    "samples_trained",
    "train_loss",
    "val_loss",
    "current_lr",
    "is_overfitting",
    "avg_attention_entropy",
    "patience_counter",
}


def test_config_defaults_follow_the_design_and_are_strict() -> None:
    config = FusionConfig()
    assert (config.hidden_dim, config.num_heads, config.dropout) == (32, 2, 0.2)
    assert (config.learning_rate, config.l2_lambda, config.warmup_steps) == (0.001, 0.01, 100)
    assert (config.min_samples, config.val_split, config.gradient_clip) == (200, 0.2, 1.0)
    assert (config.early_stopping_patience, config.early_stopping_delta) == (50, 0.001)
    assert (config.batch_size, config.enabled, config.device) == (32, True, "auto")
    with pytest.raises(pydantic.ValidationError, match="extra"):
        FusionConfig.model_validate({"hiden_dim": 16})
    with pytest.raises(pydantic.ValidationError, match="divisible"):
        FusionConfig(hidden_dim=30, num_heads=4)
    with pytest.raises(pydantic.ValidationError):
        config.dropout = 0.5  # type: ignore[misc]


def test_training_stats_carry_the_spec_fields() -> None:
    fusion = make_fusion(min_samples=50)
    feed(fusion, informative_stream(300))
    stats = fusion.get_training_stats()
    assert set(stats) >= SPEC_STATS
    assert stats["samples_trained"] == 32 * stats["train_steps"] > 0
    assert 0 < stats["current_lr"] <= 1e-3 and math.isfinite(stats["val_loss"])
    assert 0 < stats["avg_attention_entropy"] < math.log(4)


def test_attention_weights_are_per_model_and_sum_to_one() -> None:
    fusion = make_fusion(min_samples=50)
    assert fusion.get_attention_weights() == {f"model_{i}": 0.25 for i in range(4)}  # no data yet
    stream = informative_stream(300)
    feed(fusion, stream)
    weights = fusion.get_attention_weights()
    assert list(weights) == ["model_0", "model_1", "model_2", "model_3"]
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(w > 0 for w in weights.values()) and len(set(weights.values())) == 4
    fusion.forward(stream.outputs(0))
    last = fusion.get_last_attention_weights()
    assert sum(last.values()) == pytest.approx(1.0, abs=1e-6) and last != weights


def _fresh_attention_summary(fusion: TransformerFusion) -> tuple[list[float], float]:
    """Mean attention and entropy over the newest buffered samples, from a full forward."""
    buffer, trainer = fusion.buffer, fusion.trainer
    tokens, context, _ = buffer.gather(buffer.newest_slots(ATTENTION_WINDOW))
    with torch.inference_mode():
        _, attention = fusion.network(*trainer.network_inputs(tokens, context))
    rows = attention.double().numpy()
    entropy = -(rows * np.log(np.where(rows > 0, rows, 1.0))).sum(axis=1)
    mean = rows.mean(axis=0)
    return (mean / mean.sum()).tolist(), float(entropy.mean())


def _assert_stats_are_fresh(fusion: TransformerFusion) -> None:
    weights, entropy = _fresh_attention_summary(fusion)
    for _ in range(2):  # computed, then cached
        assert list(fusion.get_attention_weights().values()) == weights
        assert fusion.get_training_stats()["avg_attention_entropy"] == entropy


def test_stats_equal_freshly_computed_values_after_every_kind_of_update() -> None:
    stream = rich_stream(900)
    fusion = make_fusion(stream, min_samples=50, train_every=16, val_every=1, buffer_size=400)
    trainer = fusion.trainer
    feed(fusion, stream.rows(0, 300))
    _assert_stats_are_fresh(fusion)
    steps, until = trainer.steps, fusion.updates_until_change()
    assert until > 2
    feed(fusion, stream.rows(300, 299 + until))  # new samples, no training step
    assert trainer.steps == steps
    _assert_stats_are_fresh(fusion)
    feed(fusion, stream.rows(299 + until, 300 + until))  # a training step and a validation
    assert trainer.steps == steps + 1 and not trainer.stopper.paused
    assert trainer.val_loss == trainer.validation_loss()
    assert trainer.average_val_loss == trainer.average_validation_loss()
    _assert_stats_are_fresh(fusion)
    feed(fusion, stream.rows(300 + until, 900))  # the window wraps around the ring
    _assert_stats_are_fresh(fusion)


@pytest.fixture(scope="module")
def active_fusion():
    fusion = make_fusion(min_samples=50, train_every=4)
    feed(fusion, informative_stream(300))
    return fusion


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1.0, 0.5, math.nan]),
)


@settings(max_examples=60, deadline=None)
@given(
    prob=arrays(np.float64, (5, 4), elements=values),
    conf=arrays(np.float64, (5, 4), elements=values),
)
def test_any_input_gives_a_probability_and_valid_weights(active_fusion, prob, conf) -> None:
    """NaN, inf, out-of-range: never raises, P(up) in [0, 1], weights sum to 1 or 0 (none)."""
    out = active_fusion.forward_batch(prob, conf)
    assert np.all((out.prob_up >= 0) & (out.prob_up <= 1))
    totals = out.attention.sum(axis=1)
    has_model = np.isfinite(prob).any(axis=1)
    np.testing.assert_allclose(totals[has_model], 1.0, rtol=1e-6)
    assert np.all(totals[~has_model] == 0) and np.all(out.prob_up[~has_model] == 0.5)
    assert np.all(out.attention[~np.isfinite(prob)] == 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_loads_a_cpu_checkpoint_agrees_and_trains(tmp_path) -> None:
    stream = informative_stream(500)
    cpu, gpu = make_fusion(min_samples=50), make_fusion(min_samples=50, device="cuda")
    assert gpu.device.type == "cuda" and gpu.network.head.weight.is_cuda
    feed(cpu, stream.rows(0, 400))
    cpu.save(tmp_path)
    gpu.load(tmp_path)
    a = cpu.forward_batch(stream.prob[400:], stream.confidence[400:])
    b = gpu.forward_batch(stream.prob[400:], stream.confidence[400:])
    np.testing.assert_allclose(a.prob_up, b.prob_up, atol=1e-5)
    np.testing.assert_allclose(a.attention, b.attention, atol=1e-5)
    steps = gpu.trainer.steps
    feed(gpu, stream.rows(400, 500))
    assert gpu.trainer.steps > steps and math.isfinite(gpu.get_training_stats()["train_loss"])
