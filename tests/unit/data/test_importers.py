"""Import of CSV, Parquet and freqtrade feather/json files into the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from titan.data.importers import ImportFormatError, import_file, infer_series, read_candle_file
from titan.data.store import CandleStore, SeriesId

MINUTE = 60_000
T0 = 1_700_000_040_000


def rows(n: int) -> list[list[float]]:
    return [[T0 + i * MINUTE, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0] for i in range(n)]


def test_freqtrade_json_with_bad_rows_is_imported_and_rejections_counted(tmp_path: Path) -> None:
    data = [*rows(5), [T0 + 5 * MINUTE, 100.0, 98.0, 99.0, 99.5, 1.0]]  # high < low
    path = tmp_path / "binance" / "BTC_USDT-1m.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    store = CandleStore(tmp_path / "store")
    result = import_file(store, path)
    assert result.series == SeriesId("binance", "BTC/USDT", "1m")
    assert (result.read, result.stored.added, result.rejected) == (6, 5, {"high_below_low": 1})


def test_freqtrade_feather_with_datetime_column(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        rows(4), schema=["ts", "open", "high", "low", "close", "volume"], orient="row"
    )
    frame = frame.with_columns(
        pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC").alias("date")
    )
    path = tmp_path / "binance" / "ETH_USDT_USDT-1m-futures.feather"
    path.parent.mkdir()
    frame.drop("ts").write_ipc(path)
    store = CandleStore(tmp_path / "store")
    result = import_file(store, path)
    assert result.series.symbol == "ETH/USDT:USDT" and result.stored.added == 4
    assert store.read(result.series).get_column("timestamp").to_list()[0] == T0


def test_csv_with_iso_dates_and_explicit_series(tmp_path: Path) -> None:
    lines = ["date,open,high,low,close,volume"]
    for ts, o, h, low, c, v in rows(3):
        stamp = datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{stamp},{o},{h},{low},{c},{v}")
    path = tmp_path / "candles.csv"
    path.write_text("\n".join(lines))
    store = CandleStore(tmp_path / "store")
    result = import_file(store, path, exchange="kraken", symbol="BTC/EUR", timeframe="1m")
    assert result.stored.added == 3
    assert store.read(result.series).get_column("timestamp").to_list() == [
        T0,
        T0 + MINUTE,
        T0 + 2 * MINUTE,
    ]


def test_epoch_seconds_are_converted_to_ms(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + f"{T0 // 1000},1,2,0.5,1.5,3\n")
    assert read_candle_file(path).get_column("timestamp").to_list() == [T0]


def test_parquet_reimport_is_idempotent(tmp_path: Path, sample_dir: Path) -> None:
    source = sample_dir / "binanceusdm_BTCUSDT_1m.parquet"
    store = CandleStore(tmp_path)
    first = import_file(store, source)
    second = import_file(store, source)
    assert first.stored.added == first.read > 40_000
    assert (second.stored.added, second.stored.duplicates) == (0, first.read)


def test_unknown_series_and_format_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="cannot infer"):
        infer_series(tmp_path / "candles.csv", None, None, None)
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(ImportFormatError, match="unsupported"):
        read_candle_file(bad)
    missing = tmp_path / "y.csv"
    missing.write_text("a,b\n1,2\n")
    with pytest.raises(ImportFormatError, match="time column"):
        read_candle_file(missing)


def import_text(tmp_path: Path, name: str, text: str) -> tuple[list[int], dict[str, int]]:
    path = tmp_path / name
    path.write_text(text)
    store = CandleStore(tmp_path / "store")
    result = import_file(store, path, "binance", "BTC/USDT", "1m")
    return store.read(result.series).get_column("timestamp").to_list(), result.rejected


def test_one_junk_time_cell_rejects_only_its_row(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close,volume\n"
    text += "".join(f"{ts},1,2,0.5,1.5,3\n" for ts in (T0, "abc", T0 + MINUTE))
    assert import_text(tmp_path, "x.csv", text) == ([T0, T0 + MINUTE], {"malformed": 1})


def test_epoch_seconds_that_would_overflow_are_rejected_not_wrapped(tmp_path: Path) -> None:
    """-2**62 s * 1000 wraps to 0 in int64: it must not be stored as a 1970 candle."""
    text = "timestamp,open,high,low,close,volume\n"
    text += "".join(f"{ts},1,2,0.5,1.5,3\n" for ts in (-(2**62), T0 // 1000))
    assert import_text(tmp_path, "x.csv", text) == ([T0], {"malformed": 1})


def test_freqtrade_json_with_unrepresentable_cells_rejects_rows_not_the_file(
    tmp_path: Path,
) -> None:
    data = [*rows(2), [2**70, 1, 2, 0.5, 1.5, 3], [1e300, 1, 2, 0.5, 1.5, 3], [T0, "x", 1, 1, 1, 1]]
    stamps, rejected = import_text(tmp_path, "x.json", json.dumps(data))
    assert (stamps, rejected) == ([T0, T0 + MINUTE], {"malformed": 3})


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("x.json", b"\x80not utf-8"),
        ("x.json", b"{broken"),
        ("x.csv", b"timestamp,open,Open,high,low,close,volume\n1,1,1,2,0.5,1.5,3\n"),
        ("x.feather", b"not arrow"),
    ],
)
def test_unreadable_files_raise_only_import_format_error(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFormatError, match="cannot read"):
        read_candle_file(path)
