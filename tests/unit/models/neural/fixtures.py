"""Shared helpers for the training tests: tiny neural configs and bundled sample data."""

from __future__ import annotations

from functools import cache

from tests.conftest import SAMPLE_DIR
from titan.config.training import NeuralConfig, TrainerConfig
from titan.training.data import Samples, Series, load_series, samples

TINY = NeuralConfig(
    lstm_hidden=8,
    cnn_filters=(4, 8, 8),
    cnn_fc=(8, 8),
    attention_dim=16,
    attention_heads=2,
    attention_ffn=32,
    attention_fc=8,
    ensemble_hidden=8,
    meta_hidden=(8, 8),
    min_samples=100,
    trainer=TrainerConfig(max_steps=10, eval_every=5, batch_size=32),
)
STEP_MS = 60_000


@cache
def bundled(symbol: str = "BTC/USDT", last: int = 6000) -> Series:
    """The newest `last` candles of a bundled 1m sample, with features."""
    return load_series(SAMPLE_DIR, "binanceusdm", symbol, "1m", last=last)


def bundled_samples(last: int = 6000) -> Samples:
    return samples(bundled(last=last), TINY.lookback)
