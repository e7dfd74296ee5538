"""Property tests: garbage CSV / JSON / feather files never crash an import and never store
an invalid candle. The only error that may escape is `ImportFormatError` (unreadable file)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.data.oracle import MINUTE, YEAR_2200_MS, oracle_valid
from titan.data.importers import ImportFormatError, import_file
from titan.data.store import CandleStore, frame_to_candles

T0 = 1_700_000_040_000
TIME_NAMES = ["timestamp", "date", "time", "open_time", "datetime"]
VALUE_NAMES = ["open", "high", "low", "close", "volume"]
STAMPS = [T0, T0 // 1000, -MINUTE, YEAR_2200_MS, 60_000 * 10**15, 2**63 - 1, -(2**63)]
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ints = st.one_of(
    st.sampled_from(STAMPS),
    st.integers(0, 50).map(lambda n: T0 + n * MINUTE),
    st.integers(-(2**63), 2**63 - 1),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 99.0, 100.0, 101.0, 1e300]),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "nan", "inf", "2023-11-14T22:14:00Z", "2023-11-14", "1e400", "-0"]),
)
garbage = st.one_of(st.none(), st.booleans(), ints, floats, texts)
# Plausible values per column (any combination is a valid candle), so that rows get through.
good = {
    "time": st.integers(0, 50).map(lambda n: T0 + n * MINUTE),
    "open": st.sampled_from([100.0, 100.5]),
    "high": st.sampled_from([101.0, 102.0]),
    "low": st.sampled_from([98.0, 99.0]),
    "close": st.sampled_from([99.5, 100.0]),
    "volume": st.sampled_from([0.0, 1.0, 12.5]),
}


def cell(kind: str) -> st.SearchStrategy[Any]:
    """Mostly (3 in 4) a plausible value, else garbage (`one_of` would flatten the weights)."""
    return st.integers(0, 3).flatmap(lambda pick: garbage if pick == 0 else good[kind])


@st.composite
def headers(draw: st.DrawFn) -> list[str]:
    """The needed columns (any time-column name, any case, shuffled), sometimes one missing or
    extra."""
    names = [draw(st.sampled_from(TIME_NAMES)), *VALUE_NAMES]
    names = [draw(st.sampled_from([name, name.upper(), name.title()])) for name in names]
    if draw(st.integers(0, 9)) == 0:
        names.pop(draw(st.integers(0, len(names) - 1)))
    if draw(st.integers(0, 9)) == 0:
        names.append(draw(st.sampled_from(["x", "open", "Date"])))
    return draw(st.permutations(names))


def kind_of(name: str) -> str:
    lower = name.lower()
    return lower if lower in good else ("time" if lower in TIME_NAMES else "volume")


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[Any]]]:
    names = draw(headers())
    row = st.tuples(*(cell(kind_of(name)) for name in names)).map(list)
    return names, draw(st.lists(row, max_size=12))


def import_garbage(name: str, write: Callable[[Path], None]) -> None:
    """Write a file, import it; assert only ImportFormatError escapes and stored rows are valid."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        write(path)
        store = CandleStore(Path(tmp) / "store")
        try:
            result = import_file(store, path, "binance", "BTC/USDT", "1m")
        except ImportFormatError:
            return
        stored = list(frame_to_candles("BTC/USDT", store.read(result.series)))
        assert all(oracle_valid(candle) for candle in stored)
        stamps = [candle.ts for candle in stored]
        assert stamps == sorted(set(stamps))
        assert result.stored.added <= result.read


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\n", " ").replace("\r", " ")


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    names, rows = draw(tables())
    return "\n".join([",".join(names), *(",".join(csv_cell(c) for c in row) for row in rows)])


@FUZZ
@given(st.one_of(csv_texts(), st.text(max_size=200)))
def test_garbage_csv_never_crashes_and_never_stores_invalid(text: str) -> None:
    import_garbage("candles.csv", lambda path: path.write_text(text, encoding="utf-8"))


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["candles.csv", "c.json", "c.feather"]))
def test_random_bytes_never_crash_an_import(data: bytes, name: str) -> None:
    import_garbage(name, lambda path: path.write_bytes(data))


json_values = st.recursive(
    garbage, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner)
)
json_rows = st.lists(
    st.tuples(*(cell(kind) for kind in good)).map(list) | st.lists(garbage, min_size=6, max_size=8),
    max_size=12,
)


def dump_json(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


@FUZZ
@given(st.one_of(json_rows, json_values))
def test_garbage_freqtrade_json_never_crashes_and_never_stores_invalid(value: Any) -> None:
    import_garbage("candles.json", lambda path: path.write_text(dump_json(value)))


DTYPES = [pl.Int64, pl.Float64, pl.String, pl.Boolean, pl.Datetime("ms", "UTC"), pl.Datetime("us")]


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    """A table with the needed columns holding mostly plausible values, some columns cast to a
    random type (unconvertible cells become nulls); sometimes a column is missing or doubled."""
    names, rows = draw(tables())
    columns = []
    for index, name in enumerate(names):
        values = [row[index] for row in rows]
        natural = pl.Int64 if kind_of(name) == "time" else pl.Float64
        dtype = draw(st.sampled_from(DTYPES)) if draw(st.integers(0, 3)) == 0 else natural
        columns.append(to_series(name, values, dtype))
    unique = {series.name: series for series in reversed(columns)}  # a frame's names are unique
    return pl.DataFrame(list(unique.values()))


def to_series(name: str, values: list[Any], dtype: pl.DataType) -> pl.Series:
    if isinstance(dtype, pl.Datetime):
        stamps = [v if type(v) is int and abs(v) < 10**15 else None for v in values]
        return pl.Series(name, stamps, pl.Int64).cast(dtype)
    if dtype == pl.String:
        return pl.Series(name, [None if v is None else str(v) for v in values], pl.String)
    cleaned = [v if isinstance(v, int | float) and abs(v) < 2**63 else None for v in values]
    return pl.Series(name, cleaned, pl.Float64).cast(dtype, strict=False)


@FUZZ
@given(frames())
def test_garbage_feather_never_crashes_and_never_stores_invalid(frame: pl.DataFrame) -> None:
    import_garbage("candles.feather", frame.write_ipc)
