"""Candle store: atomic, deduplicating appends that never lose stored data."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from titan.data.store import CandleStore, SeriesId, find_gaps, symbol_key

MINUTE = 60_000
SERIES = SeriesId("binance", "BTC/USDT", "1m")


def frame(minutes: range, price: float = 100.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [m * MINUTE for m in minutes],
            "open": [price] * len(minutes),
            "high": [price + 1] * len(minutes),
            "low": [price - 1] * len(minutes),
            "close": [price] * len(minutes),
            "volume": [1.0] * len(minutes),
        }
    )


def test_append_merges_sorted_and_dedupes(tmp_path: Path) -> None:
    store = CandleStore(tmp_path)
    assert store.append(SERIES, frame(range(10, 20))).added == 10
    result = store.append(SERIES, frame(range(0, 15)))
    assert (result.added, result.duplicates, result.total) == (10, 5, 20)
    stored = store.read(SERIES)
    assert stored.get_column("timestamp").to_list() == [m * MINUTE for m in range(20)]


def test_conflicting_values_keep_stored_row_and_are_counted(tmp_path: Path) -> None:
    store = CandleStore(tmp_path)
    store.append(SERIES, frame(range(5), price=100.0))
    result = store.append(SERIES, frame(range(3, 8), price=200.0))
    assert (result.added, result.duplicates, result.conflicts) == (3, 2, 2)
    closes = store.read(SERIES).get_column("close").to_list()
    assert closes == [100.0] * 5 + [200.0] * 3


def test_failed_write_leaves_existing_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CandleStore(tmp_path)
    store.append(SERIES, frame(range(5)))
    before = store.path(SERIES).read_bytes()

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.append(SERIES, frame(range(5, 10)))
    assert store.path(SERIES).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [store.path(SERIES).name]  # no temp file left


def test_read_range_and_last_ts(tmp_path: Path) -> None:
    store = CandleStore(tmp_path)
    store.append(SERIES, frame(range(10)))
    assert store.read(SERIES, start=3 * MINUTE, end=6 * MINUTE).height == 3
    assert store.last_ts(SERIES) == 9 * MINUTE
    assert store.last_ts(SeriesId("binance", "ETH/USDT", "1m")) is None


def test_info_reports_gaps(tmp_path: Path) -> None:
    store = CandleStore(tmp_path)
    store.append(SERIES, pl.concat([frame(range(0, 5)), frame(range(8, 10)), frame(range(11, 12))]))
    info = store.info(SERIES)
    assert (info.rows, info.first_ts, info.last_ts) == (8, 0, 11 * MINUTE)
    assert info.gaps == ((5 * MINUTE, 3), (10 * MINUTE, 1)) and info.missing == 4


def test_list_series_round_trips_symbol(tmp_path: Path) -> None:
    store = CandleStore(tmp_path)
    store.append(SERIES, frame(range(3)))
    assert store.list_series() == [SERIES]


def test_bundled_sample_is_a_valid_store(sample_dir: Path) -> None:
    store = CandleStore(sample_dir)
    names = {(s.exchange, symbol_key(s.symbol), s.timeframe) for s in store.list_series()}
    assert {("binanceusdm", "BTCUSDT", "1m"), ("binanceusdm", "ETHUSDT", "1m")} <= names
    for series in store.list_series():
        info = store.info(series)
        assert info.rows > 40_000 and info.gaps == ()


def test_find_gaps_on_contiguous_series_is_empty() -> None:
    import numpy as np

    assert find_gaps(np.arange(0, 10 * MINUTE, MINUTE), MINUTE) == ()
