"""Candle store: one Parquet file per exchange/symbol/timeframe.

File name `{exchange}_{SYMBOL}_{timeframe}.parquet` (SYMBOL without separators, e.g.
`binance_BTCUSDT_1m.parquet`), columns `timestamp` (int64 ms open time, UTC) and
`open, high, low, close, volume` (float64), sorted, unique on `timestamp`.

Appends never lose stored data: the merged series is written to a temporary file,
fsync'd and atomically renamed over the old one. On a timestamp clash the stored row
wins (the incoming one is counted as a duplicate, or a conflict when its values differ).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from titan.atomic import atomic_write
from titan.data.candle import Candle
from titan.data.timeframes import timeframe_ms

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
SCHEMA = {"timestamp": pl.Int64, **{name: pl.Float64 for name in COLUMNS[1:]}}
_FILE_RE = re.compile(
    r"^(?P<exchange>[a-z0-9]+)_(?P<symbol>[A-Za-z0-9]+)_(?P<tf>\d+[smhdw])\.parquet$"
)


def symbol_key(symbol: str) -> str:
    """'BTC/USDT' and 'BTC/USDT:USDT' -> 'BTCUSDT' (the exchange name tells spot from futures)."""
    return symbol.split(":")[0].replace("/", "").replace("-", "").replace("_", "").upper()


@dataclass(frozen=True, slots=True)
class SeriesId:
    exchange: str
    symbol: str
    timeframe: str

    @property
    def filename(self) -> str:
        return f"{self.exchange.lower()}_{symbol_key(self.symbol)}_{self.timeframe}.parquet"

    @property
    def timeframe_ms(self) -> int:
        return timeframe_ms(self.timeframe)


@dataclass(frozen=True, slots=True)
class AppendResult:
    added: int
    duplicates: int
    conflicts: int
    total: int


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    series: SeriesId
    rows: int
    first_ts: int | None
    last_ts: int | None
    gaps: tuple[tuple[int, int], ...]  # (first missing ts, missing candles)

    @property
    def missing(self) -> int:
        return sum(count for _, count in self.gaps)


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def candles_to_frame(candles: Iterable[Candle]) -> pl.DataFrame:
    rows = [(c.ts, c.open, c.high, c.low, c.close, c.volume) for c in candles]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def frame_to_candles(symbol: str, frame: pl.DataFrame) -> Iterator[Candle]:
    for ts, o, h, low, c, v in frame.select(COLUMNS).iter_rows():
        yield Candle(symbol, ts, o, h, low, c, v)


def find_gaps(timestamps: np.ndarray, step_ms: int) -> tuple[tuple[int, int], ...]:
    """Runs of missing candles in a sorted timestamp array."""
    if len(timestamps) < 2:
        return ()
    diffs = np.diff(timestamps)
    where = np.nonzero(diffs > step_ms)[0]
    return tuple((int(timestamps[i] + step_ms), int(diffs[i] // step_ms - 1)) for i in where)


class CandleStore:
    """A directory of Parquet candle series."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, series: SeriesId) -> Path:
        return self.root / series.filename

    def exists(self, series: SeriesId) -> bool:
        return self.path(series).is_file()

    def read(
        self, series: SeriesId, start: int | None = None, end: int | None = None
    ) -> pl.DataFrame:
        """Candles with start <= timestamp < end (ms); an empty frame if none are stored."""
        if not self.exists(series):
            return empty_frame()
        frame = pl.scan_parquet(self.path(series)).select(COLUMNS)
        if start is not None:
            frame = frame.filter(pl.col("timestamp") >= start)
        if end is not None:
            frame = frame.filter(pl.col("timestamp") < end)
        return frame.collect().cast(SCHEMA)  # type: ignore[arg-type]

    def last_ts(self, series: SeriesId) -> int | None:
        if not self.exists(series):
            return None
        value = (
            pl.scan_parquet(self.path(series)).select(pl.col("timestamp").max()).collect().item()
        )
        return None if value is None else int(value)

    def append(self, series: SeriesId, frame: pl.DataFrame) -> AppendResult:
        """Merge `frame` (validated candles) into the stored series, atomically."""
        incoming = frame.select(COLUMNS).cast(SCHEMA).unique("timestamp", keep="first")  # type: ignore[arg-type]
        stored = self.read(series)
        clashes = incoming.join(stored, on="timestamp", how="inner", suffix="_stored")
        conflicts = _count_conflicts(clashes)
        fresh = incoming.join(stored.select("timestamp"), on="timestamp", how="anti")
        if fresh.height:
            merged = pl.concat([stored, fresh]).sort("timestamp")
            self._write(series, merged)
            total = merged.height
        else:
            total = stored.height
        return AppendResult(fresh.height, clashes.height, conflicts, total)

    def _write(self, series: SeriesId, frame: pl.DataFrame) -> None:
        target = self.path(series)
        meta = {"exchange": series.exchange, "symbol": series.symbol, "timeframe": series.timeframe}
        metadata = {"titan": json.dumps(meta), **_source_metadata(target)}
        table = frame.to_arrow().replace_schema_metadata(metadata)
        atomic_write(target, lambda handle: pq.write_table(table, handle, compression="zstd"))

    def list_series(self) -> list[SeriesId]:
        found = []
        for path in sorted(self.root.glob("*.parquet")):
            match = _FILE_RE.match(path.name)
            if match:
                symbol = _stored_symbol(path) or match["symbol"]
                found.append(SeriesId(match["exchange"], symbol, match["tf"]))
        return found

    def info(self, series: SeriesId) -> SeriesInfo:
        stamps = self.read(series).get_column("timestamp").to_numpy()
        if len(stamps) == 0:
            return SeriesInfo(series, 0, None, None, ())
        gaps = find_gaps(stamps, series.timeframe_ms)
        return SeriesInfo(series, len(stamps), int(stamps[0]), int(stamps[-1]), gaps)


def _count_conflicts(clashes: pl.DataFrame) -> int:
    if clashes.height == 0:
        return 0
    differs = pl.any_horizontal(pl.col(name) != pl.col(f"{name}_stored") for name in COLUMNS[1:])
    return int(clashes.select(differs.sum()).item())


def _source_metadata(path: Path) -> dict[str, str]:
    """Keep the existing file's provenance `source` entry (copied sample data cites its origin)."""
    if not path.is_file():
        return {}
    metadata = pq.read_schema(path).metadata or {}
    source = metadata.get(b"source")
    return {"source": source.decode()} if source else {}


def _stored_symbol(path: Path) -> str | None:
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(b"titan")
    if raw is None:
        return None
    symbol = json.loads(raw).get("symbol")
    return str(symbol) if symbol else None
