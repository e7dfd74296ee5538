"""ReplayFeed: validated intervals merged by time, and precomputed feature rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.unit.features.helpers import random_walk
from titan.data.store import CandleStore, SeriesId
from titan.engine.feed import Interval, ReplayFeed
from titan.features import FeatureBuffers

MINUTE = 60_000
BTC = SeriesId("test", "BTC/USDT", "1m")
ETH = SeriesId("test", "ETH/USDT", "1m")


def _frame(n: int, seed: int, skip: set[int]) -> pl.DataFrame:
    open_, high, low, close, volume = random_walk(n, seed)
    ts = np.arange(n, dtype=np.int64) * MINUTE
    keep = np.array([i not in skip for i in range(n)])
    frame = pl.DataFrame(
        {"timestamp": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )
    return frame.filter(pl.Series(keep))


@pytest.fixture
def store(tmp_path: Path) -> CandleStore:
    store = CandleStore(tmp_path)
    store.append(BTC, _frame(400, seed=1, skip={50, 51}))  # a gap
    eth = _frame(400, seed=2, skip=set()).with_columns(  # one invalid candle (high < low)
        pl.when(pl.col("timestamp") == 120 * MINUTE)
        .then(pl.col("low") * 0.5)
        .otherwise(pl.col("high"))
        .alias("high")
    )
    store.append(ETH, eth)
    return store


def _intervals(feed: ReplayFeed) -> list[Interval]:
    async def collect() -> list[Interval]:
        return [interval async for interval in feed]

    return asyncio.run(collect())


def test_intervals_merge_symbols_by_time_and_drop_rejected_candles(store: CandleStore) -> None:
    intervals = _intervals(ReplayFeed(store, [BTC, ETH]))
    assert [i.ts for i in intervals] == [t * MINUTE for t in range(400)]
    symbols = {i.ts // MINUTE: [c.symbol for c in i.candles] for i in intervals}
    assert symbols[50] == ["ETH/USDT"] and symbols[120] == ["BTC/USDT"]
    assert symbols[0] == ["BTC/USDT", "ETH/USDT"]
    assert all(i.features is None for i in intervals)


def test_precomputed_rows_equal_the_streamed_rows(store: CandleStore) -> None:
    streamed, appended = FeatureBuffers(), FeatureBuffers()
    for interval in _intervals(ReplayFeed(store, [BTC, ETH], features=True)):
        assert interval.features is not None
        for candle, (table, position) in zip(interval.candles, interval.features, strict=True):
            row = table[position]
            c = candle
            expected = streamed.update(c.symbol, c.open, c.high, c.low, c.close, c.volume)
            np.testing.assert_array_equal(row, expected)
            appended.append(c.symbol, position, row)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert appended.count(symbol) == streamed.count(symbol) > 390
        np.testing.assert_array_equal(appended.window(symbol), streamed.window(symbol))


def test_a_resumed_feed_continues_the_rows_of_the_uninterrupted_one(store: CandleStore) -> None:
    whole = _intervals(ReplayFeed(store, [BTC, ETH], features=True))
    resumed = _intervals(ReplayFeed(store, [BTC, ETH], start_after=199 * MINUTE, features=True))
    assert [i.ts for i in resumed] == [i.ts for i in whole[200:]]
    for left, right in zip(whole[200:], resumed, strict=True):
        assert left.features is not None and right.features is not None
        for (table, p), (other, q) in zip(left.features, right.features, strict=True):
            assert p == q
            np.testing.assert_array_equal(table[p], other[q])
