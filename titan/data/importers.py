"""Import candle files (CSV, Parquet, freqtrade feather/json) into the store.

Every row passes the same boundary validation as live data; rejected rows are logged
and counted, never stored. The series identity comes from the options or, when
omitted, from the file name: Titan's own `binance_BTCUSDT_1m.parquet` or freqtrade's
`BTC_USDT-1m.feather` / `BTC_USDT_USDT-1m-futures.json` (exchange from the folder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from titan.data.boundary import Boundary
from titan.data.store import COLUMNS, SCHEMA, AppendResult, CandleStore, SeriesId, candles_to_frame

_TITAN_NAME = re.compile(r"^(?P<ex>[a-z0-9]+)_(?P<sym>[A-Za-z0-9]+)_(?P<tf>\d+[smhdw])$")
_FREQTRADE_NAME = re.compile(
    r"^(?P<sym>[A-Z0-9]+_[A-Z0-9]+(?:_[A-Z0-9]+)?)-(?P<tf>\d+[smhdw])(?:-\w+)?$"
)
_TIME_COLUMNS = ("timestamp", "date", "time", "open_time", "datetime")


class ImportFormatError(ValueError):
    """The file cannot be read as candles."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    series: SeriesId
    read: int
    rejected: dict[str, int]
    stored: AppendResult


def import_file(
    store: CandleStore,
    path: Path,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> ImportResult:
    series = infer_series(path, exchange, symbol, timeframe)
    frame = read_candle_file(path)
    boundary = Boundary(series.timeframe_ms)
    rows = frame.sort("timestamp", maintain_order=True).iter_rows()
    candles = list(boundary.admit_rows(series.symbol, rows))
    stored = store.append(series, candles_to_frame(candles))
    return ImportResult(series, frame.height, boundary.rejected, stored)


def infer_series(
    path: Path, exchange: str | None, symbol: str | None, timeframe: str | None
) -> SeriesId:
    stem = path.name.split(".")[0]
    guess: dict[str, str] = {}
    if match := _TITAN_NAME.match(stem):
        guess = {"exchange": match["ex"], "symbol": match["sym"], "timeframe": match["tf"]}
    elif match := _FREQTRADE_NAME.match(stem):
        base, quote, *settle = match["sym"].split("_")
        guess = {
            "exchange": path.parent.name.lower() if path.parent.name else "",
            "symbol": f"{base}/{quote}" + (f":{settle[0]}" if settle else ""),
            "timeframe": match["tf"],
        }
    resolved = {
        "exchange": exchange or guess.get("exchange"),
        "symbol": symbol or guess.get("symbol"),
        "timeframe": timeframe or guess.get("timeframe"),
    }
    missing = [key for key, value in resolved.items() if not value]
    if missing:
        raise ImportFormatError(
            f"cannot infer {', '.join(missing)} from {path.name}; pass them as options"
        )
    return SeriesId(str(resolved["exchange"]), str(resolved["symbol"]), str(resolved["timeframe"]))


def read_candle_file(path: Path) -> pl.DataFrame:
    """Read any supported file into the store schema (timestamps as int64 ms).

    Raises ImportFormatError, and only that, when the file cannot be read as candles; cells
    that cannot be parsed become nulls, which the boundary then rejects row by row.
    """
    reader = _reader_for(path)
    try:
        return _normalise(reader(path), path)
    except ImportFormatError:
        raise
    except _READ_ERRORS as exc:
        raise ImportFormatError(f"cannot read {path}: {str(exc)[:300]}") from None


# What reading a damaged or foreign file can raise (JSON and Unicode errors are ValueErrors).
_READ_ERRORS = (OSError, ValueError, TypeError, OverflowError, pl.exceptions.PolarsError)


def _reader_for(path: Path) -> Callable[[Path], pl.DataFrame]:
    suffixes = "".join(path.suffixes).lower()
    for ending, reader in _READERS:
        if suffixes.endswith(ending):
            return reader
    raise ImportFormatError(f"unsupported file type: {path.name}")


def _read_csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema_length=10_000)


def _read_freqtrade_json(path: Path) -> pl.DataFrame:
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or not all(
        isinstance(row, list) and len(row) >= 6 for row in rows
    ):
        raise ImportFormatError(f"{path.name}: expected a JSON list of [ts, o, h, l, c, v] rows")
    return pl.DataFrame([row[:6] for row in rows], schema=list(COLUMNS), orient="row")


_READERS: tuple[tuple[str, Callable[[Path], pl.DataFrame]], ...] = (
    (".csv", _read_csv),
    (".parquet", pl.read_parquet),
    (".feather", pl.read_ipc),
    (".arrow", pl.read_ipc),
    (".ipc", pl.read_ipc),
    (".json", _read_freqtrade_json),
)


def _normalise(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    lower = {name: name.lower() for name in raw.columns}
    frame = raw.rename(lower)
    time_column = next((name for name in _TIME_COLUMNS if name in frame.columns), None)
    missing = [name for name in COLUMNS[1:] if name not in frame.columns]
    if time_column is None or missing:
        raise ImportFormatError(f"{path.name}: needs a time column and {', '.join(COLUMNS[1:])}")
    stamps = _to_epoch_ms(frame.get_column(time_column))
    values = frame.select(pl.col(name).cast(pl.Float64, strict=False) for name in COLUMNS[1:])
    return values.with_columns(stamps.alias("timestamp")).select(COLUMNS).cast(SCHEMA)  # type: ignore[arg-type]


def _to_epoch_ms(column: pl.Series) -> pl.Series:
    """Datetimes, ISO strings, epoch seconds or epoch ms -> int64 ms (UTC)."""
    if column.dtype == pl.String:
        column = _parse_time_strings(column)
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            column = column.dt.replace_time_zone("UTC")
        return column.dt.epoch("ms")
    numbers = column.cast(pl.Int64, strict=False)
    largest = numbers.max()
    if largest is None or int(largest) >= _SECONDS_BELOW:  # type: ignore[arg-type]
        return numbers
    # Epoch seconds -> ms; values whose ms would overflow int64 (and wrap) become nulls.
    seconds = pl.col("s")
    in_range = seconds.is_between(-_MAX_SECONDS, _MAX_SECONDS)
    return numbers.to_frame("s").select(pl.when(in_range).then(seconds * 1000)).to_series()


# Epoch values below this are seconds (1e11 s is the year 5138; 1e11 ms is 1973).
_SECONDS_BELOW = 100_000_000_000
_MAX_SECONDS = (2**63 - 1) // 1000


def _parse_time_strings(column: pl.Series) -> pl.Series:
    """Text as ISO dates or as epoch numbers, whichever reads more cells; the rest -> null.

    (A number column with one junk cell arrives as text: its numbers must survive.)
    """
    numbers = column.cast(pl.Int64, strict=False)
    try:
        dates = column.str.to_datetime(time_zone="UTC", strict=False)
    except pl.exceptions.PolarsError:  # no date format fits the first value
        return numbers
    return numbers if numbers.null_count() <= dates.null_count() else dates
