"""Forward validity, batch == one-by-one, masking of missing models, the layer itself."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from tests.unit.fusion.helpers import feed, informative_stream, make_fusion, rich_stream
from titan.config.fusion import FusionConfig
from titan.fusion import FusionNetwork, TransformerFusionLayer
from titan.models.base import MISSING, ModelOutput


@pytest.fixture(scope="module")
def trained_rich():
    """A fusion past min_samples, trained on a stream with context, extras and gaps."""
    stream = rich_stream(700)
    fusion = make_fusion(stream, min_samples=100, train_every=2)
    feed(fusion, stream.rows(0, 500))
    assert fusion.is_active and fusion.trainer.steps > 100
    return fusion, stream.rows(500, 700)


def test_forward_returns_probabilities_summing_to_one(trained_rich) -> None:
    fusion, stream = trained_rich
    for i in range(50):
        up, down = fusion.forward(stream.outputs(i), stream.features(i))
        assert 0.0 < up < 1.0 and 0.0 < down < 1.0
        assert up + down == pytest.approx(1.0, abs=1e-15)
        assert fusion.fallback_reason is None


def test_fresh_untrained_forward_is_valid_average() -> None:
    """Before min_samples the answer is a valid probability (the average)."""
    fusion = make_fusion()
    up, down = fusion.forward([ModelOutput(0.9, 1.0), ModelOutput(0.2, 0.5)] * 2)
    assert (up, down) == (pytest.approx(0.55), pytest.approx(0.45))


def test_extreme_and_missing_inputs_never_raise(trained_rich) -> None:
    fusion, _ = trained_rich
    nan = math.nan
    cases = [
        [
            ModelOutput(0.0, 0.0),
            ModelOutput(1.0, 1.0),
            ModelOutput(nan, nan),
            ModelOutput(1.0, 0.0),
        ],
        [ModelOutput(1.5, math.inf), ModelOutput(-0.2, -1.0), ModelOutput(0.5, 0.5), MISSING],
    ]
    for outputs in cases:
        up, down = fusion.forward(outputs, {"rsi": math.inf, "close_z": nan})
        assert 0.0 <= up <= 1.0 and up + down == pytest.approx(1.0)


def test_batch_rows_equal_single_forwards_bit_for_bit(trained_rich) -> None:
    """The engine batches symbols/timesteps: every row must equal its own forward exactly."""
    fusion, stream = trained_rich
    batch = fusion.forward_batch(stream.prob, stream.confidence, stream.extras, stream.context)
    assert batch.prob_up.shape == (200,) and batch.attention.shape == (200, 4)
    for i in range(200):
        up, _ = fusion.forward(stream.outputs(i), stream.features(i))
        assert up == batch.prob_up[i], i
        np.testing.assert_array_equal(fusion.last_attention, batch.attention[i])
    for lo, hi in [(0, 1), (3, 5), (7, 10), (11, 75), (100, 199)]:
        part = fusion.forward_batch(
            stream.prob[lo:hi],
            stream.confidence[lo:hi],
            stream.extras[lo:hi],
            stream.context[lo:hi],
        )
        np.testing.assert_array_equal(part.prob_up, batch.prob_up[lo:hi])
        np.testing.assert_array_equal(part.attention, batch.attention[lo:hi])


def test_batching_over_timesteps_matches_step_by_step_between_updates() -> None:
    """Forward over a block of timesteps, then their updates == forward/update interleaved."""
    stream = informative_stream(900, seed=3)
    stepwise = make_fusion(min_samples=100, train_every=16)
    blocked = make_fusion(min_samples=100, train_every=16)
    feed(stepwise, stream.rows(0, 300))
    feed(blocked, stream.rows(0, 300))
    one_by_one = []
    for i in range(300, 900):
        one_by_one.append(
            stepwise.forward_batch(stream.prob[i : i + 1], stream.confidence[i : i + 1]).prob_up[0]
        )
        stepwise.update_batch(
            stream.prob[i : i + 1], stream.confidence[i : i + 1], stream.directions[i : i + 1]
        )
    blocks = []
    edges = [300, *range(304, 900, 16), 900]  # the model only changes at multiples of 16
    for lo, hi in itertools.pairwise(edges):
        block = stream.rows(lo, hi)
        blocks.extend(blocked.forward_batch(block.prob, block.confidence).prob_up)
        feed(blocked, block)
    np.testing.assert_array_equal(np.array(one_by_one), np.array(blocks))


def test_missing_model_is_masked_not_averaged_as_half(trained_rich) -> None:
    fusion, stream = trained_rich
    prob, conf = stream.prob[:20].copy(), stream.confidence[:20].copy()
    prob[:, 2] = np.nan
    base = fusion.forward_batch(prob, conf, stream.extras[:20], stream.context[:20])
    conf[:, 2] = 0.123  # the masked model's other inputs must not matter
    extras = stream.extras[:20].copy()
    extras[:, 2] = 5.0
    again = fusion.forward_batch(prob, conf, extras, stream.context[:20])
    np.testing.assert_array_equal(base.prob_up, again.prob_up)
    assert np.all(base.attention[:, 2] == 0.0)
    np.testing.assert_allclose(base.attention.sum(axis=1), 1.0, rtol=1e-6)
    half = prob.copy()
    half[:, 2] = 0.5
    as_half = fusion.forward_batch(half, conf, extras, stream.context[:20])
    assert not np.array_equal(base.prob_up, as_half.prob_up)


def test_all_models_missing_gives_half_and_a_reason(trained_rich) -> None:
    fusion, stream = trained_rich
    prob = stream.prob[:3].copy()
    prob[1] = np.nan
    out = fusion.forward_batch(prob, stream.confidence[:3], stream.extras[:3], stream.context[:3])
    assert out.prob_up[1] == 0.5 and np.all(out.attention[1] == 0.0)
    assert fusion.fallback_reason is None  # the other rows were answered by the network
    assert 0.0 < out.prob_up[0] < 1.0 and out.attention[0].sum() == pytest.approx(1.0)
    assert fusion.forward([MISSING] * 4) == (0.5, 0.5)
    assert fusion.fallback_reason == "all_models_missing"


def test_wrongly_shaped_arrays_are_programming_errors(trained_rich) -> None:
    fusion, stream = trained_rich
    with pytest.raises(ValueError, match="context"):
        fusion.forward_batch(stream.prob[:2], stream.confidence[:2], stream.extras[:2], None)
    with pytest.raises(ValueError, match="confidence"):
        fusion.forward_batch(
            stream.prob[:2], stream.confidence[:3], stream.extras[:2], stream.context[:2]
        )


def test_layer_attention_is_a_masked_distribution() -> None:
    torch.manual_seed(0)
    layer = TransformerFusionLayer(width=32, num_heads=2, ffn_dim=64, dropout_p=0.2)
    h = torch.randn(5, 6, 32)
    key_bias = torch.zeros(5, 6)
    key_bias[:, 4] = -math.inf
    out, attn = layer(h, key_bias)
    first, first_attn = layer.forward_first(h, key_bias)
    assert out.shape == (5, 6, 32) and attn.shape == (5, 2, 6, 6)
    torch.testing.assert_close(attn.sum(-1), torch.ones(5, 2, 6))
    assert torch.all(attn[..., 4] == 0)
    torch.testing.assert_close(first, out[:, 0])  # the last-layer shortcut is the same token
    torch.testing.assert_close(first_attn, attn[:, :, 0].transpose(1, 2))  # (B, T, heads)
    gen = torch.Generator().manual_seed(1)
    assert not torch.equal(layer(h, key_bias, gen)[0], out)  # dropout only with a generator


@pytest.mark.parametrize(("num_layers", "n_context"), [(1, 3), (2, 3), (2, 0)])
def test_attention_only_pass_equals_the_forward_attention_bit_for_bit(
    num_layers: int, n_context: int
) -> None:
    torch.manual_seed(num_layers)
    network = FusionNetwork(FusionConfig(num_layers=num_layers), 4, 3, n_context)
    torch.nn.init.normal_(network.head.weight)  # a trained-like head: the logits matter
    tokens = torch.randn(37, 4, 3)
    present = torch.rand(37, 4) > 0.3
    present[:, 0] = True
    prior = torch.randn(37, 4)
    context = torch.randn(37, 2 * n_context) if n_context else None
    with torch.inference_mode():
        _, expected = network(tokens, present, prior, context)
        got = network.attention(tokens, present, context)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("n_models", [1, 2, 7])
def test_any_model_count_trains_and_predicts(n_models: int) -> None:
    stream = informative_stream(200, n_models=n_models, seed=n_models)
    fusion = make_fusion(stream, min_samples=100, train_every=2)
    feed(fusion, stream)
    out = fusion.forward_batch(stream.prob[:9], stream.confidence[:9])
    assert fusion.fallback_reason is None and out.attention.shape == (9, n_models)
    assert np.all((out.prob_up > 0) & (out.prob_up < 1))
    np.testing.assert_allclose(out.attention.sum(axis=1), 1.0, rtol=1e-6)
    single = fusion.forward(stream.outputs(4))[0]
    assert single == out.prob_up[4]
