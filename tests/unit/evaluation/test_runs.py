"""Ledger -> evaluation tables: the forecast table, the online majority class, the
windowed trading summary, on tiny hand-made ledgers with known answers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from titan.engine.ledger import EquityRow, Ledger, Outcome, Prediction
from titan.evaluation.runs import (
    forecast_table,
    last_counters,
    online_base_rate,
    score_all,
    trading_summary,
    weekly,
)

MIN = 60_000
NAMES = ("m1", "m2")


def _prediction(symbol: str, ts: int, prob: float, base: float, p: list[float]) -> Prediction:
    return Prediction(symbol, ts, ts + MIN, 100.0, prob, base, 0.5, prob != base, "hold", {"p": p})


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """Four predictions inserted out of order; three resolved (one a tie), one pending."""
    ledger = Ledger(tmp_path / "ledger.db")
    ids = ledger.add_predictions(
        [
            _prediction("A", 1 * MIN, 0.55, 0.5, [0.5, 0.5]),
            _prediction("B", 0, 0.4, 0.45, [0.3, 0.6]),
            _prediction("A", 0, 0.7, 0.6, [0.8, 0.4]),
            _prediction("A", 2 * MIN, 0.9, 0.9, [0.9, 0.9]),
        ]
    )
    resolved: list[tuple[int, Outcome, float]] = [
        (ids[2], "UP", 101.0),
        (ids[1], "UP", 101.0),
        (ids[0], "TIE", 100.0),
    ]
    ledger.resolve_many(resolved)
    return ledger


def test_forecast_table_keeps_resolved_rows_sorted_with_every_competitor(ledger: Ledger) -> None:
    table = forecast_table(ledger.frame("predictions"), NAMES)
    assert table.ts.tolist() == [0, 0, MIN]  # pending row dropped, sorted by (ts, symbol)
    np.testing.assert_array_equal(table.outcome, [1.0, 1.0, np.nan])
    assert list(table.competitors) == ["fusion", "simple average", "majority class", *NAMES]
    np.testing.assert_allclose(table.competitors["fusion"], [0.7, 0.4, 0.55])
    np.testing.assert_allclose(table.competitors["simple average"], [0.6, 0.45, 0.5])
    np.testing.assert_allclose(table.competitors["m1"], [0.8, 0.3, 0.5])
    np.testing.assert_allclose(table.competitors["m2"], [0.4, 0.6, 0.5])
    # nothing had resolved at t=0; by t=1 min both t=0 outcomes (up, up) had
    np.testing.assert_allclose(table.competitors["majority class"], [0.5, 0.5, 1.0])
    assert table.fused.tolist() == [True, True, True]


def test_score_all_excludes_ties_for_every_competitor(ledger: Ledger) -> None:
    scores = score_all(forecast_table(ledger.frame("predictions"), NAMES))
    assert {s.n for s in scores.values()} == {2} and {s.n_ties for s in scores.values()} == {1}
    assert scores["fusion"].accuracy == 0.5  # 0.7 -> up (right), 0.4 -> down (wrong)
    assert scores["majority class"].accuracy == 0.0  # 0.5 is a down call, both went up
    assert scores["majority class"].brier == pytest.approx(0.25)
    assert scores["m1"].brier == pytest.approx(((0.8 - 1) ** 2 + (0.3 - 1) ** 2) / 2)


def test_weekly_defaults_to_every_competitor(ledger: Ledger) -> None:
    table = forecast_table(ledger.frame("predictions"), NAMES)
    tables = weekly(table)
    assert list(tables) == list(table.competitors)
    assert all(len(rows) == 1 and rows[0]["n_ties"] == 1 for rows in tables.values())
    assert list(weekly(table, ["m2"])) == ["m2"]


def test_online_base_rate_uses_only_outcomes_resolved_by_then() -> None:
    """Horizon 2: a prediction sees the outcomes whose target time has passed; ties skipped."""
    ts = np.array([0, 1, 2, 3, 4, 5]) * MIN
    target = ts + 2 * MIN
    outcome = np.array([1.0, 0.0, np.nan, 1.0, 1.0, 0.0])
    rate = online_base_rate(ts, target, outcome)
    np.testing.assert_allclose(rate, [0.5, 0.5, 1.0, 0.5, 0.5, 2 / 3])


# --------------------------------------------------------------------------- trading


def _state(trades: int, wins: int, fees: float, **extra: Any) -> dict[str, Any]:
    return {"trade_count": trades, "win_count": wins, "fees_paid": fees, **extra}


@pytest.fixture
def book(tmp_path: Path) -> Ledger:
    """Six intervals; cumulative account snapshots stored only where the account traded."""
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.add_equity(
        [
            EquityRow(0, 1000.0, 500.0, 0.5, _state(1, 1, 2.0)),
            EquityRow(1 * MIN, 1010.0, 500.0, 0.0),
            EquityRow(2 * MIN, 1005.0, 500.0, 0.5, _state(2, 1, 3.0)),
            EquityRow(3 * MIN, 1020.0, 500.0, 0.5, _state(3, 2, 4.5)),
            EquityRow(4 * MIN, 1015.0, 500.0, 0.0),
            EquityRow(5 * MIN, 1030.0, 1030.0, 0.0, _state(5, 3, 6.0)),
        ]
    )
    fill = {"symbol": "A", "side": "buy", "quantity": 1.0, "price": 100.0, "fee": 0.5}
    ledger.add_fills(
        {**fill, "order_id": str(i), "ts": t * MIN} for i, t in enumerate((0, 2, 2, 3, 5, 5))
    )
    return ledger


def _summary(ledger: Ledger, evaluate_from: int | None) -> Any:
    equity, fills = ledger.frame("equity"), ledger.frame("fills")
    return trading_summary(equity, fills, 1000.0, 525_600, evaluate_from)


def test_trading_summary_counts_only_the_evaluated_window(book: Ledger) -> None:
    """Trades, wins and fees are the snapshot differences across the window's start."""
    s = _summary(book, 3 * MIN)
    assert (s.window_start_ms, s.window_end_ms, s.intervals) == (3 * MIN, 5 * MIN, 3)
    assert (s.start_equity, s.end_equity, s.pnl) == (1005.0, 1030.0, 25.0)
    assert s.total_return == pytest.approx(25 / 1005)
    assert s.max_drawdown == pytest.approx(1 - 1015 / 1020)
    assert s.exposure == pytest.approx(1 / 3)
    assert (s.trades, s.warmup_trades, s.fills) == (3, 2, 3)
    assert s.win_rate == pytest.approx(2 / 3)
    assert s.fees == pytest.approx(3.0)


def test_trading_summary_without_a_window_is_the_whole_run(book: Ledger) -> None:
    s = _summary(book, None)
    assert (s.window_start_ms, s.intervals, s.start_equity, s.end_equity) == (0, 6, 1000.0, 1030.0)
    assert (s.trades, s.warmup_trades, s.fills) == (5, 0, 6)
    assert s.win_rate == pytest.approx(3 / 5) and s.fees == pytest.approx(6.0)


def test_trading_summary_of_a_window_without_trades(book: Ledger) -> None:
    s = _summary(book, 4 * MIN)
    assert (s.trades, s.fills, s.warmup_trades) == (2, 2, 3)  # the t=5 min snapshot
    s = _summary(book, 6 * MIN)  # after the last row: nothing in the window
    assert (s.trades, s.fills, s.intervals, s.fees) == (0, 0, 0, 0.0)
    assert math.isnan(s.win_rate) and s.start_equity == s.end_equity == 1030.0


def test_last_counters_defaults_and_old_snapshots(tmp_path: Path) -> None:
    """No snapshot: zero; a snapshot without `win_count`: wins from the win rate."""
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.add_equity([EquityRow(0, 1000.0, 1000.0, 0.0)])
    counters = last_counters(ledger.frame("equity"))
    assert (counters.trades, counters.wins, counters.fees) == (0, 0, 0.0)
    old = {"trade_count": 4, "win_rate": 0.75, "fees_paid": 1.5}
    ledger.add_equity([EquityRow(MIN, 1000.0, 1000.0, 0.0, old)])
    counters = last_counters(ledger.frame("equity"))
    assert (counters.trades, counters.wins, counters.fees) == (4, 3, 1.5)
