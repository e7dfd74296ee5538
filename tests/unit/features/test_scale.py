"""Normalisation: features carry no price or volume unit."""

from __future__ import annotations

import numpy as np

from tests.unit.features.helpers import random_walk
from titan.features import WARMUP, compute_features


def test_features_are_identical_under_power_of_two_price_and_volume_scaling() -> None:
    o, h, low, c, v = random_walk(3000, seed=41, level=1e5, tick=0.1)
    k = 2.0**-17  # BTC at 100k -> about 0.76
    scaled = compute_features(o * k, h * k, low * k, c * k, v * 1024.0)
    np.testing.assert_array_equal(scaled, compute_features(o, h, low, c, v))


def test_features_agree_across_price_levels_and_volume_units() -> None:
    o, h, low, c, v = random_walk(3000, seed=42, level=1e5, tick=0.1)
    k = 7.3e-6  # BTC-like series moved to an ADA-like price
    scaled = compute_features(o * k, h * k, low * k, c * k, v * 3.3)
    original = compute_features(o, h, low, c, v)
    np.testing.assert_allclose(scaled[WARMUP:], original[WARMUP:], rtol=0, atol=1e-6)
