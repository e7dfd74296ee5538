"""Per-week tables: ISO-week grouping in UTC and per-week metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from titan.evaluation import (
    forecast_by_week,
    forecast_report,
    per_period,
    sharpe,
    trading_by_week,
    week_start_ms,
)


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


@given(st.integers(0, 4_102_444_800_000))  # 1970 .. 2100
def test_week_start_is_monday_midnight_utc(ts: int) -> None:
    """The week start is a Monday 00:00 UTC at most 7 days before the timestamp."""
    start = int(week_start_ms([ts])[0])
    dt = datetime.fromtimestamp(start / 1000, tz=UTC)
    assert dt.weekday() == 0 and (dt.hour, dt.minute, dt.second) == (0, 0, 0)
    assert 0 <= ts - start < 7 * 86_400_000


def test_forecast_by_week_groups_rows() -> None:
    """Rows split at Monday 00:00 UTC; each row carries the ISO week label and its report."""
    ts = [
        _ms(2024, 1, 14, 23, 59),  # Sunday, week 2
        _ms(2024, 1, 15, 0, 0),  # Monday, week 3
        _ms(2024, 1, 16),
        _ms(2024, 1, 21, 12),
    ]
    p = np.array([0.9, 0.8, 0.3, 0.6])
    y = np.array([1.0, 0.0, np.nan, 1.0])
    rows = forecast_by_week(ts, p, y)
    assert [r["week"] for r in rows] == ["2024-W02", "2024-W03"]
    assert [r["rows"] for r in rows] == [1, 3]
    assert rows[0]["start_ms"] == _ms(2024, 1, 8)
    assert rows[1] == {
        "week": "2024-W03",
        "start_ms": _ms(2024, 1, 15),
        "rows": 3,
        **forecast_report(p[1:], y[1:]).as_dict(),
    }
    assert rows[1]["n_ties"] == 1 and rows[1]["accuracy"] == 0.5


def test_iso_week_label_across_new_year() -> None:
    """2024-12-30 (Monday) belongs to ISO week 2025-W01."""
    rows = per_period([_ms(2024, 12, 31)], lambda s: {})
    assert rows == [{"week": "2025-W01", "start_ms": _ms(2024, 12, 30), "rows": 1}]


def test_trading_by_week() -> None:
    """Each week compounds only its own returns; drawdown and exposure are per week."""
    ts = [_ms(2024, 1, 1, h) for h in range(3)] + [_ms(2024, 1, 8, h) for h in range(3)]
    r = np.array([0.1, -0.5, 0.2, 0.01, 0.02, 0.03])
    pos = np.array([1, 1, 0, 0, 0, 1])
    rows = trading_by_week(ts, r, pos, periods_per_year=8760)
    assert rows[0]["total_return"] == pytest.approx(1.1 * 0.5 * 1.2 - 1)
    assert rows[0]["max_drawdown"] == pytest.approx(0.5)
    assert rows[0]["exposure"] == pytest.approx(2 / 3)
    assert rows[1]["max_drawdown"] == 0.0
    assert rows[1]["sharpe"] == pytest.approx(sharpe(r[3:], 8760))


def test_per_period_empty_and_bad_input() -> None:
    """No rows -> no weeks; unsorted timestamps or a length mismatch are rejected."""
    assert per_period([], lambda s: {}) == []
    with pytest.raises(ValueError):
        per_period([2, 1], lambda s: {})
    with pytest.raises(ValueError):
        forecast_by_week([1, 2], [0.5], [1.0])
