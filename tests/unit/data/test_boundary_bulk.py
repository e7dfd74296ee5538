"""Bulk admission of stored rows: the same candles, events and counters as one by one."""

from __future__ import annotations

import numpy as np
import pytest
from structlog.testing import capture_logs

from titan.data.boundary import Boundary
from titan.data.candle import Candle, check_values, surely_valid

MINUTE = 60_000


def _rows(seed: int, n: int = 600) -> np.ndarray:
    """Mostly clean 1m rows with every kind of fault mixed in."""
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.choice([MINUTE, MINUTE, MINUTE, 2 * MINUTE, 0, -MINUTE], n)) + 10 * MINUTE
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    high, low = close * 1.001, close * 0.999
    rows = np.column_stack([ts, close, high, low, close, rng.uniform(0, 5, n)]).astype(float)
    for k in rng.choice(n, 60, replace=False):
        column = int(rng.integers(0, 6))
        if column == 0:  # stored open times are integers: misaligned or out of range
            rows[k, 0] = rng.choice([rows[k, 0] + 17.0, -MINUTE])
        else:
            rows[k, column] = rng.choice([np.nan, np.inf, -1.0, 0.0, rows[k, column] * 2])
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_surely_valid_never_passes_an_invalid_row(seed: int) -> None:
    rows = _rows(seed)
    for row, sure in zip(rows, surely_valid(rows, MINUTE), strict=True):
        values = row.tolist()
        if sure:
            candle = Candle("X", int(values[0]), *values[1:6])
            assert check_values(candle, MINUTE) is None


@pytest.mark.parametrize("seed", range(6))
def test_bulk_admission_equals_one_by_one(seed: int) -> None:
    rows = _rows(seed)
    logged_from = int(rows[len(rows) // 3, 0]) if seed % 2 else None
    single, bulk = Boundary(MINUTE, ["X"]), Boundary(MINUTE, ["X"])
    with capture_logs() as one_by_one:
        expected = []
        for row in rows.tolist():
            candle = Candle("X", int(row[0]), *row[1:6])
            if logged_from is None or row[0] >= logged_from:
                expected.append(single.admit(candle) is not None)
            else:
                expected.append(not hasattr(single.validator.accept(candle), "reason"))
    with capture_logs() as together:
        kept = bulk.admit_array("X", rows, logged_from)
    assert kept.tolist() == expected
    assert 0 < kept.sum() < len(rows)
    assert together == one_by_one
    assert bulk.rejected == single.rejected
    assert bulk.validator.accepted == single.validator.accepted
    assert bulk.validator.last_ts == single.validator.last_ts
    assert list(bulk.validator.gaps) == list(single.validator.gaps)
