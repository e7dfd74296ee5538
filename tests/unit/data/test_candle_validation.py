"""Boundary validation: every invalid candle is rejected with a reason, never an exception."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.data.oracle import YEAR_2200_MS, oracle_valid
from titan.data.boundary import Boundary
from titan.data.candle import Candle, CandleValidator, Reason, Rejection, parse_candle
from titan.data.store import candles_to_frame
from titan.ops.logging import configure_logging

MINUTE = 60_000
GOOD = [1_700_000_040_000, 100.0, 101.0, 99.0, 100.5, 12.0]


def reason_of(row: list[Any], validator: CandleValidator | None = None) -> str | None:
    validator = validator or CandleValidator(MINUTE)
    result = validator.accept(parse_candle("BTC/USDT", row))
    return result.reason.value if isinstance(result, Rejection) else None


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ([GOOD[0], math.nan, 101.0, 99.0, 100.5, 1.0], "not_finite"),
        ([GOOD[0], 100.0, math.inf, 99.0, 100.5, 1.0], "not_finite"),
        ([GOOD[0], 100.0, 101.0, 99.0, 100.5, math.nan], "not_finite"),
        ([GOOD[0], 0.0, 101.0, 0.0, 100.5, 1.0], "non_positive_price"),
        ([GOOD[0], -1.0, 101.0, -2.0, 100.5, 1.0], "non_positive_price"),
        ([GOOD[0], 100.0, 98.0, 99.0, 100.5, 1.0], "high_below_low"),
        ([GOOD[0], 102.0, 101.0, 99.0, 100.5, 1.0], "open_close_outside_range"),
        ([GOOD[0], 100.0, 101.0, 99.0, 98.5, 1.0], "open_close_outside_range"),
        ([GOOD[0], 100.0, 101.0, 99.0, 100.5, -0.1], "negative_volume"),
        ([GOOD[0] + 1, 100.0, 101.0, 99.0, 100.5, 1.0], "misaligned_timestamp"),
        ([60_000 * 10**15, 100.0, 101.0, 99.0, 100.5, 1.0], "timestamp_out_of_range"),
        ([YEAR_2200_MS, 100.0, 101.0, 99.0, 100.5, 1.0], "timestamp_out_of_range"),
        ([-MINUTE, 100.0, 101.0, 99.0, 100.5, 1.0], "timestamp_out_of_range"),
        (["x", 100.0, 101.0, 99.0, 100.5, 1.0], "malformed"),
        ([GOOD[0], "abc", 101.0, 99.0, 100.5, 1.0], "malformed"),
        ([GOOD[0], None, 101.0, 99.0, 100.5, 1.0], "malformed"),
        ([GOOD[0], 100.0], "malformed"),
    ],
)
def test_each_invalid_candle_is_rejected_with_its_reason(row: list[Any], reason: str) -> None:
    assert reason_of(row) == reason


def test_valid_candle_is_accepted() -> None:
    assert reason_of(GOOD) is None
    assert reason_of([YEAR_2200_MS - MINUTE, *GOOD[1:]]) is None


def test_far_future_timestamp_is_rejected_before_the_store() -> None:
    """60000 * 10**15 overflows int64: it must be rejected, not crash `candles_to_frame`."""
    boundary = Boundary(MINUTE)
    far = [60_000 * 10**15, *GOOD[1:]]
    candles = list(boundary.admit_rows("BTC/USDT", [GOOD, far]))
    assert candles_to_frame(candles).height == 1
    assert boundary.rejected == {"timestamp_out_of_range": 1}


def test_duplicate_and_out_of_order_are_rejected() -> None:
    validator = CandleValidator(MINUTE)
    assert reason_of(GOOD, validator) is None
    assert reason_of(GOOD, validator) == "duplicate"
    earlier = [GOOD[0] - MINUTE, *GOOD[1:]]
    assert reason_of(earlier, validator) == "out_of_order"
    assert validator.rejected == {"duplicate": 1, "out_of_order": 1}


def test_unknown_symbol_is_rejected() -> None:
    validator = CandleValidator(MINUTE, symbols=["ETH/USDT"])
    assert reason_of(GOOD, validator) == "unknown_symbol"


def test_gap_is_detected_with_missing_count() -> None:
    validator = CandleValidator(MINUTE)
    validator.accept(parse_candle("BTC/USDT", GOOD))
    later = [GOOD[0] + 4 * MINUTE, *GOOD[1:]]
    assert isinstance(validator.accept(parse_candle("BTC/USDT", later)), Candle)
    gap = validator.last_gap
    assert gap is not None and (gap.start_ts, gap.missing) == (GOOD[0] + MINUTE, 3)


def test_rejection_is_logged_as_structured_event(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json", sys.stdout)
    boundary = Boundary(MINUTE)
    assert boundary.admit_row("BTC/USDT", [GOOD[0], 100.0, 98.0, 99.0, 100.5, 1.0]) is None
    event = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert event["event"] == "candle_rejected"
    assert (event["reason"], event["symbol"], event["ts"]) == (
        "high_below_low",
        "BTC/USDT",
        GOOD[0],
    )
    assert boundary.rejected == {"high_below_low": 1}


def test_gap_is_logged_as_structured_event(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json", sys.stdout)
    boundary = Boundary(MINUTE)
    rows = [GOOD, [GOOD[0] + MINUTE, *GOOD[1:]], [GOOD[0] + 5 * MINUTE, *GOOD[1:]]]
    assert len(list(boundary.admit_rows("BTC/USDT", rows))) == 3
    events = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    gaps = [event for event in events if event["event"] == "candle_gap"]
    assert len(gaps) == 1
    gap = gaps[0]
    assert (gap["symbol"], gap["start_ts"], gap["missing"], gap["duration_s"]) == (
        "BTC/USDT",
        GOOD[0] + 2 * MINUTE,
        3,
        180.0,
    )
    assert gap["level"] == "warning"


garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.integers(0, 7), st.integers(), max_size=8),
)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20))
# Timestamps near and beyond every bound, aligned and not.
EDGE_STAMPS = [0, -MINUTE, YEAR_2200_MS - MINUTE, YEAR_2200_MS, 60_000 * 10**15, 2**63, 2**64]
int_stamps = st.one_of(
    st.sampled_from(EDGE_STAMPS),
    st.integers(-10, YEAR_2200_MS // MINUTE + 10).map(lambda n: n * MINUTE),
    st.integers(-(10**18), 10**18).map(lambda n: n * MINUTE),
    st.integers(-(10**20), 10**20),
)
stamps = st.one_of(int_stamps, st.floats(allow_nan=True, allow_infinity=True))
prices = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 99.0, 100.0, 101.0]),
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        garbage,
        st.lists(st.one_of(garbage, numbers), min_size=0, max_size=8),
        st.tuples(stamps, prices, prices, prices, prices, prices).map(list),
    )
)
def test_random_garbage_never_raises_and_never_passes_invalid(row: Any) -> None:
    validator = CandleValidator(MINUTE)
    result = validator.accept(parse_candle("BTC/USDT", row))
    if isinstance(result, Candle):
        assert oracle_valid(result)
        assert candles_to_frame([result]).height == 1


@settings(max_examples=400, deadline=None)
@given(int_stamps, prices, prices, prices, prices, prices)
def test_well_formed_candle_is_accepted_exactly_when_the_oracle_says_valid(
    ts: int, o: float, h: float, low: float, c: float, v: float
) -> None:
    candle = Candle("BTC/USDT", ts, o, h, low, c, v)
    accepted = isinstance(CandleValidator(MINUTE).accept(candle), Candle)
    assert accepted == oracle_valid(candle)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(EDGE_STAMPS), st.sampled_from([1, 60, 3600, 86_400]))
def test_edge_timestamps_agree_with_the_oracle(ts: int, seconds: int) -> None:
    candle = Candle("X", ts, 100.0, 101.0, 99.0, 100.5, 1.0)
    accepted = isinstance(CandleValidator(seconds * 1000).accept(candle), Candle)
    assert accepted == oracle_valid(candle, seconds * 1000)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 50), numbers, numbers, numbers, numbers, numbers), max_size=30
    )
)
def test_accepted_sequence_is_valid_strictly_increasing(rows: list[tuple[Any, ...]]) -> None:
    validator = CandleValidator(MINUTE)
    accepted = []
    for minute, *values in rows:
        result = validator.accept(parse_candle("X", [minute * MINUTE, *values]))
        if isinstance(result, Candle):
            accepted.append(result)
    assert all(oracle_valid(c) for c in accepted)
    stamps = [c.ts for c in accepted]
    assert stamps == sorted(set(stamps))
    assert validator.accepted == len(accepted)
    assert sum(validator.rejected.values()) == len(rows) - len(accepted)


def test_reason_enum_covers_issue_list() -> None:
    wanted = {
        "not_finite",
        "non_positive_price",
        "high_below_low",
        "open_close_outside_range",
        "negative_volume",
        "misaligned_timestamp",
        "timestamp_out_of_range",
        "out_of_order",
        "duplicate",
    }
    assert wanted <= {reason.value for reason in Reason}
