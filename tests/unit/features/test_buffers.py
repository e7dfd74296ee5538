"""FeatureBuffers: bounded rings, model windows, warm-up and exact checkpoints."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.unit.features.helpers import Candles, random_walk
from titan.config.features import FeaturesConfig
from titan.features import NUM_FEATURES, WARMUP, FeatureBuffers, compute_features


def _feed(buffers: FeatureBuffers, symbol: str, candles: Candles, start: int, stop: int) -> None:
    for i in range(start, stop):
        buffers.update(symbol, *(float(x[i]) for x in candles))


@pytest.fixture(scope="module")
def candles() -> Candles:
    return random_walk(700, seed=51)


def test_update_returns_the_forty_feature_row_of_the_batch_table(candles: Candles) -> None:
    buffers = FeatureBuffers()
    rows = np.array([buffers.update("BTC", *(float(x[i]) for x in candles)) for i in range(80)])
    assert rows.shape == (80, NUM_FEATURES)
    np.testing.assert_array_equal(rows, compute_features(*(x[:80] for x in candles)))


def test_window_is_the_latest_rows_oldest_first(candles: Candles) -> None:
    buffers = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    _feed(buffers, "BTC", candles, 0, 50)
    np.testing.assert_array_equal(buffers.window("BTC"), compute_features(*candles)[20:50])


def test_window_wraps_around_the_ring(candles: Candles) -> None:
    buffers = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    _feed(buffers, "BTC", candles, 0, 650)
    table = compute_features(*candles)
    np.testing.assert_array_equal(buffers.window("BTC", 64), table[586:650])
    np.testing.assert_array_equal(buffers.window("BTC", 5), table[645:650])


def test_windows_stack_symbols_for_batched_inference(candles: Candles) -> None:
    buffers = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    other = random_walk(700, seed=52, level=0.7)
    _feed(buffers, "BTC", candles, 0, 200)
    _feed(buffers, "ADA", other, 0, 130)
    stacked = buffers.windows(["ADA", "BTC"])
    assert stacked.shape == (2, 30, NUM_FEATURES)
    np.testing.assert_array_equal(stacked[0], buffers.window("ADA"))
    np.testing.assert_array_equal(stacked[1], buffers.window("BTC"))


def test_ring_memory_stays_fixed_per_symbol(candles: Candles) -> None:
    buffers = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    _feed(buffers, "BTC", candles, 0, 100)
    rows_before = buffers.state_dict()["symbols"]["BTC"]["rows"]
    _feed(buffers, "BTC", candles, 100, 700)
    rows_after = buffers.state_dict()["symbols"]["BTC"]["rows"]
    assert rows_before.shape == rows_after.shape == (64, NUM_FEATURES)


def test_is_warm_once_the_window_is_past_the_warmup(candles: Candles) -> None:
    buffers = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    _feed(buffers, "BTC", candles, 0, WARMUP + 29)
    assert not buffers.is_warm("BTC")
    _feed(buffers, "BTC", candles, WARMUP + 29, WARMUP + 30)
    assert buffers.is_warm("BTC")
    assert not np.isnan(buffers.window("BTC")).any()
    assert not buffers.is_warm("ETH")


def test_state_dict_round_trip_continues_bit_for_bit(candles: Candles) -> None:
    original = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    _feed(original, "BTC", candles, 0, 300)
    _feed(original, "ETH", candles, 0, 20)
    restored = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    restored.load_state_dict(pickle.loads(pickle.dumps(original.state_dict())))
    for buffers in (original, restored):
        _feed(buffers, "BTC", candles, 300, 700)
        _feed(buffers, "ETH", candles, 20, 100)
    for symbol in ("BTC", "ETH"):
        np.testing.assert_array_equal(restored.window(symbol, 64), original.window(symbol, 64))
    assert restored.count("BTC") == 700


def test_load_state_dict_rejects_another_buffer_size(candles: Candles) -> None:
    small = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    _feed(small, "BTC", candles, 0, 10)
    with pytest.raises(ValueError, match="buffer_size"):
        FeatureBuffers(FeaturesConfig(buffer_size=128)).load_state_dict(small.state_dict())


def test_window_errors_name_the_problem(candles: Candles) -> None:
    buffers = FeatureBuffers(FeaturesConfig(buffer_size=64, window=30))
    _feed(buffers, "BTC", candles, 0, 10)
    with pytest.raises(KeyError, match="ETH"):
        buffers.window("ETH")
    with pytest.raises(ValueError, match="has 10 rows"):
        buffers.window("BTC")
    with pytest.raises(ValueError, match="buffer_size"):
        buffers.window("BTC", 65)


def test_config_rejects_a_window_longer_than_the_buffer() -> None:
    with pytest.raises(ValueError, match="window"):
        FeaturesConfig(buffer_size=64, window=65)


def test_appended_precomputed_rows_give_the_streamed_windows(candles: Candles) -> None:
    table = compute_features(*candles)
    streamed, appended = FeatureBuffers(), FeatureBuffers()
    _feed(streamed, "BTC", candles, 0, 600)
    for i in range(600):
        appended.append("BTC", i, table[i])
    assert appended.count("BTC") == 600 and appended.is_warm("BTC")
    np.testing.assert_array_equal(appended.window("BTC"), streamed.window("BTC"))


def test_streamed_rows_may_continue_with_precomputed_ones(candles: Candles) -> None:
    table = compute_features(*candles)
    buffers = FeatureBuffers()
    _feed(buffers, "BTC", candles, 0, 300)
    for i in range(300, 600):
        buffers.append("BTC", i, table[i])
    np.testing.assert_array_equal(buffers.window("BTC", 300), table[300:600])


def test_a_precomputed_row_must_follow_the_buffer(candles: Candles) -> None:
    table = compute_features(*candles)
    buffers = FeatureBuffers()
    _feed(buffers, "BTC", candles, 0, 10)
    with pytest.raises(ValueError, match="does not follow"):
        buffers.append("BTC", 11, table[11])


def test_no_streaming_after_precomputed_rows_even_across_a_checkpoint(candles: Candles) -> None:
    table = compute_features(*candles)
    buffers = FeatureBuffers()
    for i in range(100):
        buffers.append("BTC", i, table[i])
    restored = FeatureBuffers()
    restored.load_state_dict(pickle.loads(pickle.dumps(buffers.state_dict())))
    assert restored.count("BTC") == 100
    for resumed in (buffers, restored):
        with pytest.raises(ValueError, match="precomputed"):
            resumed.update("BTC", *(float(x[100]) for x in candles))
    restored.append("BTC", 100, table[100])
    np.testing.assert_array_equal(restored.window("BTC", 101), table[:101])
