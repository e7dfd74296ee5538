"""The oracle: streaming rows equal batch rows (1e-9 relative, after each warm-up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import shared_file
from tests.unit.features.helpers import (
    Candles,
    assert_matches_batch,
    load_candles,
    random_walk,
    stream_table,
)
from titan.features import FEATURE_NAMES, WARMUP, StreamingFeatures, compute_features


def _assert_oracle(candles: Candles) -> None:
    assert_matches_batch(stream_table(candles), compute_features(*candles))


@pytest.mark.shared_data
def test_streaming_matches_batch_on_real_btc_1m_series() -> None:
    _assert_oracle(load_candles(shared_file("binance_BTCUSDT_1m.parquet")))


@pytest.mark.parametrize("name", ["binanceusdm_BTCUSDT_1m", "binanceusdm_ETHUSDT_1m"])
def test_streaming_matches_batch_on_bundled_sample(sample_dir: Path, name: str) -> None:
    _assert_oracle(load_candles(sample_dir / f"{name}.parquet"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": 1},
        {"seed": 2, "level": 1e5, "tick": 0.1},
        {"seed": 3, "level": 0.7, "tick": 1e-4},
        {"seed": 4, "level": 1e-8},
        {"seed": 5, "level": 3e7, "tick": 1.0, "zero_volume": False},
    ],
)
def test_streaming_matches_batch_on_random_walks(kwargs: dict[str, float]) -> None:
    _assert_oracle(random_walk(4000, **kwargs))  # type: ignore[arg-type]


@st.composite
def candle_series(draw: st.DrawFn) -> Candles:
    """Short series with flat candles, repeated closes, zero volumes and tiny/huge prices."""
    n = draw(st.integers(1, 160))
    level = draw(st.sampled_from([1e-6, 0.7, 100.0, 1e5]))
    moves = st.one_of(st.just(0.0), st.floats(-0.03, 0.03))
    returns = np.array(draw(st.lists(moves, min_size=n, max_size=n)))
    wicks = st.one_of(st.just(0.0), st.floats(0.0, 0.01))
    up, down = (np.array(draw(st.lists(wicks, min_size=n, max_size=n))) for _ in range(2))
    volumes = st.one_of(st.just(0.0), st.floats(0.0, 1e6))
    volume = np.array(draw(st.lists(volumes, min_size=n, max_size=n)))
    close = level * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * (1.0 + up)
    low = np.minimum(open_, close) * (1.0 - down)
    return open_, high, low, close, volume


@settings(max_examples=60, deadline=None)
@given(candle_series())
def test_streaming_matches_batch_on_generated_series(candles: Candles) -> None:
    _assert_oracle(candles)


def test_flat_prices_and_zero_volume_give_finite_features_after_warmup() -> None:
    n = 300
    candles: Candles = (
        np.full(n, 2.5),
        np.full(n, 2.5),
        np.full(n, 2.5),
        np.full(n, 2.5),
        np.zeros(n),
    )
    stream, batch = stream_table(candles), compute_features(*candles)
    assert_matches_batch(stream, batch)
    assert np.isfinite(batch[WARMUP:]).all()


def test_zero_range_candle_has_centred_close_location() -> None:
    state = StreamingFeatures()
    row = state.update(10.0, 10.0, 10.0, 10.0, 5.0)
    assert row[FEATURE_NAMES.index("close")] == 0.0
    assert row[FEATURE_NAMES.index("hl_ratio")] == 0.0


def test_window_without_volume_has_zero_flow_features() -> None:
    o, h, low, c, v = random_walk(200, seed=9, flat_runs=False, zero_volume=False)
    v[150:] = 0.0
    row = compute_features(o, h, low, c, v)[-1]
    for name in ("obv", "ad", "vwap_20", "volume_ratio"):
        assert row[FEATURE_NAMES.index(name)] == 0.0, name


def _size(state: object) -> int:
    if isinstance(state, dict):
        return sum(_size(value) for value in state.values())
    return len(state) if isinstance(state, list) else 1


def test_streaming_state_size_does_not_grow_with_candles() -> None:
    state = StreamingFeatures()
    candles = list(zip(*(x.tolist() for x in random_walk(3000, seed=21)), strict=True))
    for candle in candles[:100]:
        state.update(*candle)
    early = _size(state.state_dict())
    for candle in candles[100:]:
        state.update(*candle)
    assert _size(state.state_dict()) == early


BAD_CANDLES = [
    (1.0, 1.0, 1.0, float("nan"), 1.0),
    (1.0, 1.0, -1.0, 1.0, 1.0),
    (1.0, 0.9, 1.0, 1.0, 1.0),
    (1.0, float("inf"), 1.0, 1.0, 1.0),
    (1.0, 1.0, 1.0, 1.0, -2.0),
    (1.0, 1.0, 1.0, 1.0, float("inf")),
]


@pytest.mark.parametrize("candle", BAD_CANDLES)
def test_streaming_rejects_an_invalid_candle_before_changing_state(
    candle: tuple[float, ...],
) -> None:
    good = list(zip(*(x.tolist() for x in random_walk(120, seed=71)), strict=True))
    state, reference = StreamingFeatures(), StreamingFeatures()
    for row in good[:60]:
        state.update(*row)
        reference.update(*row)
    with pytest.raises(ValueError, match="invalid candle"):
        state.update(*candle)
    assert state.count == 60
    for row in good[60:]:
        assert state.update(*row) == reference.update(*row)


@pytest.mark.parametrize("candle", BAD_CANDLES)
def test_batch_rejects_a_series_with_an_invalid_candle(candle: tuple[float, ...]) -> None:
    series = [x.copy() for x in random_walk(120, seed=72)]
    for column, value in zip(series, candle, strict=True):
        column[77] = value
    with pytest.raises(ValueError, match="index 77"):
        compute_features(*series)
