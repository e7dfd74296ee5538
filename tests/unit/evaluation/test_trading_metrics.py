"""Trading metrics: hand-computed curves and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from titan.evaluation import (
    equity_from_returns,
    exposure,
    max_drawdown,
    profit_factor,
    sharpe,
    total_return,
    win_rate,
)


@pytest.mark.parametrize(
    ("equity", "expected"),
    [
        ([100, 110, 99, 120, 90, 130], 0.25),  # 120 -> 90
        ([100, 80, 120, 60], 0.5),  # 120 -> 60 beats 100 -> 80
        ([1, 2, 3, 4], 0.0),  # never falls
        ([5.0], 0.0),
        ([100, 50, 0], 1.0),  # wiped out
    ],
)
def test_max_drawdown_hand_computed(equity: list[float], expected: float) -> None:
    """Max drawdown is the largest fall from a running peak, as a positive fraction."""
    assert max_drawdown(equity) == pytest.approx(expected)


@given(st.lists(st.floats(0.01, 1e6), min_size=1, max_size=50))
def test_max_drawdown_in_unit_interval(equity: list[float]) -> None:
    """For positive equity the drawdown lies in [0, 1)."""
    assert 0.0 <= max_drawdown(equity) < 1.0


def test_bad_equity_rejected() -> None:
    """Negative, non-finite or zero-start equity is rejected."""
    for bad in ([100, -1], [0, 1], [1, np.nan]):
        with pytest.raises(ValueError):
            max_drawdown(bad)


def test_total_return_and_equity_from_returns() -> None:
    """Compounding +10 % then -10 % leaves -1 %; the curve starts at `start`."""
    equity = equity_from_returns([0.1, -0.1], start=100.0)
    assert equity == pytest.approx([100.0, 110.0, 99.0])
    assert total_return(equity) == pytest.approx(-0.01)
    assert np.isnan(total_return([]))


def test_sharpe_hand_computed() -> None:
    """mean 0.01, sample std 0.01 -> Sharpe sqrt(periods_per_year)."""
    returns = [0.0, 0.01, 0.02]
    assert sharpe(returns, periods_per_year=252) == pytest.approx(np.sqrt(252))


@given(st.floats(-0.05, 0.05), st.integers(2, 500))
def test_sharpe_constant_returns_is_nan(value: float, n: int) -> None:
    """Constant returns (zero std, incl. float rounding noise) give NaN, never inf or huge."""
    assert np.isnan(sharpe(np.full(n, value), periods_per_year=525_600))


def test_sharpe_too_few_returns_is_nan() -> None:
    """A single return has no std: NaN."""
    assert np.isnan(sharpe([0.01], periods_per_year=525_600))


def test_sharpe_sign_and_annualisation() -> None:
    """Annualising scales by sqrt(periods_per_year); losing returns give a negative Sharpe."""
    rng = np.random.default_rng(3)
    r = rng.normal(-0.001, 0.01, 1000)
    assert sharpe(r, 525_600) == pytest.approx(sharpe(r, 1) * np.sqrt(525_600))
    assert sharpe(r, 1) == pytest.approx(r.mean() / r.std(ddof=1))
    assert sharpe(r, 1) < 0


def test_exposure() -> None:
    """Exposure counts long and short periods alike."""
    assert exposure([0, 1, -1, 0, 0.5]) == pytest.approx(0.6)
    assert exposure([0, 0]) == 0.0
    assert np.isnan(exposure([]))


def test_win_rate_and_profit_factor() -> None:
    """Zero-PnL trades are not wins; profit factor = gross profit / gross loss."""
    pnls = [10.0, -5.0, 0.0, 20.0, -10.0]
    assert win_rate(pnls) == pytest.approx(0.4)
    assert profit_factor(pnls) == pytest.approx(2.0)


def test_profit_factor_edges() -> None:
    """Only wins -> inf; no wins and no losses -> NaN; only losses -> 0."""
    assert profit_factor([1.0, 2.0]) == float("inf")
    assert np.isnan(profit_factor([]))
    assert np.isnan(profit_factor([0.0]))
    assert profit_factor([-1.0]) == 0.0
    assert np.isnan(win_rate([]))
