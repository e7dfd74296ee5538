"""Input encoding and standardisation: the pieces both paths (train, infer) share."""

from __future__ import annotations

import math

import numpy as np
import torch

from titan.config.fusion import FusionConfig
from titan.fusion.inputs import prior_logit_array, prior_logits, simple_average, token_features
from titan.fusion.network import FusionNetwork, key_bias_array
from titan.fusion.scaling import Z_CLIP, Standardiser


def test_token_features_mark_non_finite_prob_missing_and_clip_the_rest() -> None:
    prob = np.array([[0.7, math.nan, math.inf, 1.2, -0.1, 0.0]])
    conf = np.array([[0.5, 0.5, 0.5, math.inf, 0.1, 0.2]])
    tokens = token_features(prob, conf, None)
    assert tokens.dtype == np.float32 and tokens.shape == (1, 6, 3)
    assert np.isnan(tokens[0, 1:3, 0]).all()  # NaN and inf prob_up: missing
    np.testing.assert_allclose(tokens[0, [0, 3, 4, 5], 0], [0.2, 0.5, -0.5, -0.5], rtol=1e-6)
    assert np.isfinite(tokens[0, [0, 3, 4, 5], 1]).all()  # the logit is clipped, never inf
    assert np.isnan(tokens[0, 3, 2])  # a non-finite confidence is missing too


def test_simple_average_is_the_masked_mean() -> None:
    mean, weights = simple_average(np.array([[0.2, math.nan, 0.6], [math.nan] * 3]))
    assert mean.tolist() == [0.4, 0.5]
    assert weights.tolist() == [[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]


def test_numpy_inference_standardisation_equals_the_torch_one_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.normal(3.0, 50.0, (500, 4, 4)).astype(np.float32)
    context = rng.normal(-1.0, 1e4, (500, 3)).astype(np.float32)
    tokens[rng.random(tokens.shape) < 0.1] = np.nan
    context[rng.random(context.shape) < 0.1] = np.nan
    scaler = Standardiser(4, 4, 3, torch.device("cpu"))
    scaler.fit(torch.from_numpy(tokens[:300]), torch.from_numpy(context[:300]))
    z_t, present_t = scaler.tokens(torch.from_numpy(tokens))
    z_a, present_a = scaler.token_arrays(tokens)
    np.testing.assert_array_equal(z_t.numpy(), z_a)
    np.testing.assert_array_equal(present_t.numpy(), present_a)
    ctx_t, ctx_a = scaler.context(torch.from_numpy(context)), scaler.context_array(context)
    assert ctx_t is not None and ctx_a is not None
    np.testing.assert_array_equal(ctx_t.numpy(), ctx_a)
    assert np.abs(z_a).max() <= Z_CLIP and not np.isnan(z_a).any()
    assert abs(float(np.nanmean(z_a[:300, :, 1]))) < 0.05  # standardised on the fitted part


def test_numpy_key_bias_and_prior_logits_equal_the_torch_ones() -> None:
    rng = np.random.default_rng(1)
    tokens = rng.normal(0.0, 3.0, (50, 4, 3)).astype(np.float32)
    tokens[rng.random((50, 4)) < 0.3] = np.nan  # missing models
    present = tokens[..., 0] == tokens[..., 0]
    for n_context in (0, 3):
        network = FusionNetwork(FusionConfig(), 4, 3, n_context)
        expected = network.key_bias(torch.from_numpy(present)).numpy()
        got = key_bias_array(present, network.n_fixed)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
    expected = prior_logits(torch.from_numpy(tokens)).numpy()
    got = prior_logit_array(tokens)
    assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
