"""Evaluation metrics: pure numpy, no I/O.

Direction forecasts
-------------------
Inputs are `prob_up` (P(next move is up), in [0, 1]) and `outcome` (1.0 = up,
0.0 = down, NaN = tie / unresolved). Conventions shared by every direction metric:

* **Ties are excluded**, never counted as "down": on BTC 1m about 5 % of candles
  close flat, and calling them "down" fakes ~2.5 points of accuracy for a model
  that leans down. `forecast_report` reports how many were excluded (`n_ties`).
* A NaN `prob_up` is a missing prediction (see `titan.models.base`); such rows are
  excluded too and reported as `n_missing` (a tie row is counted as a tie only).
* With nothing left to score a metric returns NaN.
* Bad input raises ValueError: shapes differ, `prob_up` outside [0, 1] or
  infinite, `outcome` not in {0, 1, NaN}.

Metrics:

* `accuracy`: fraction of correct calls; the call is "up" iff `prob_up > 0.5`
  (exactly 0.5 is a "down" call, as in scikit-learn's thresholding).
* `log_loss`: mean negative log-likelihood, probabilities clipped to
  [1e-12, 1 - 1e-12].
* `brier`: mean squared error of `prob_up` against the outcome (0.25 for a
  constant 0.5).
* `ece`: expected calibration error of `prob_up` itself (not of the arg-max
  confidence): equal-width bins over [0, 1] (1.0 falls in the last bin),
  sum over bins of (bin count / n) * |mean outcome - mean prob_up|.
* `roc_auc`: Mann-Whitney U / (n_up * n_down) with average ranks for tied
  scores (so a constant forecast scores 0.5); NaN when only one class is present.
* `majority_class_baseline`: the constant forecast `prob_up = base rate of the
  training outcomes`, scored on the test outcomes; its call is the training
  majority class. Learned from training data only.

Trading
-------
* `total_return(equity)`: last / first - 1.
* `max_drawdown(equity)`: largest peak-to-trough fall, as a positive fraction
  (0.25 = fell 25 % below its running peak). Equity must be >= 0, first value > 0.
* `sharpe(returns, periods_per_year)`: mean / sample std (ddof=1) of per-period
  returns, times sqrt(periods_per_year) (525_600 for 1m candles, 365-day year;
  no risk-free rate). **NaN** when fewer than two returns or the std is zero (up
  to float rounding): undefined, never reported as 0 or inf.
* `exposure(positions)`: fraction of periods with a non-zero position.
* `win_rate(trade_pnls)`: fraction of trades with PnL > 0 (a zero PnL is not a win).
* `profit_factor(trade_pnls)`: gross profit / gross loss; inf when there are
  wins and no losses; NaN when there is neither.
Empty inputs give NaN.

Per-period tables
-----------------
`per_period` groups rows by UTC calendar week (ISO weeks, Monday 00:00 UTC) of
their millisecond timestamps (non-decreasing) and returns one dict per week:
`{"week": "2024-W03", "start_ms": ..., "rows": ..., **metrics}`.
`forecast_by_week` and `trading_by_week` are the two ready-made tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Row = dict[str, float | int | str]

LOG_LOSS_EPS = 1e-12
_DAY_MS = 86_400_000
_WEEK_MS = 7 * _DAY_MS
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


# --------------------------------------------------------------------------- inputs


def _as_1d(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def _check_direction(
    prob_up: npt.ArrayLike, outcome: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    p, y = _as_1d(prob_up, "prob_up"), _as_1d(outcome, "outcome")
    if p.shape != y.shape:
        raise ValueError(f"prob_up and outcome differ in length: {p.shape} vs {y.shape}")
    if np.isinf(p).any() or ((p < 0.0) | (p > 1.0)).any():
        raise ValueError("prob_up must lie in [0, 1] (NaN = missing prediction)")
    if not (np.isnan(y) | (y == 0.0) | (y == 1.0)).all():
        raise ValueError("outcome must be 1.0 (up), 0.0 (down) or NaN (tie/unresolved)")
    return p, y


def _scored(prob_up: npt.ArrayLike, outcome: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The (prob_up, outcome) pairs that count: ties and missing predictions dropped."""
    p, y = _check_direction(prob_up, outcome)
    keep = ~np.isnan(y) & ~np.isnan(p)
    return p[keep], y[keep]


# --------------------------------------------------------------------------- direction


def base_rate(outcome: npt.ArrayLike) -> float:
    """Fraction of resolved outcomes that are up (ties excluded); NaN if none."""
    y = _as_1d(outcome, "outcome")
    y = y[~np.isnan(y)]
    return float(y.mean()) if y.size else float("nan")


def accuracy(prob_up: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Fraction of correct calls, calling up iff prob_up > 0.5."""
    p, y = _scored(prob_up, outcome)
    return float(((p > 0.5) == (y == 1.0)).mean()) if y.size else float("nan")


def log_loss(prob_up: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Mean binary cross-entropy, probabilities clipped to [1e-12, 1 - 1e-12]."""
    p, y = _scored(prob_up, outcome)
    if not y.size:
        return float("nan")
    p = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def brier(prob_up: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Mean squared error of prob_up against the 0/1 outcome."""
    p, y = _scored(prob_up, outcome)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def ece(prob_up: npt.ArrayLike, outcome: npt.ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error over `n_bins` equal-width bins, weighted by count."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p, y = _scored(prob_up, outcome)
    if not y.size:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    gap = np.bincount(bins, weights=y - p, minlength=n_bins)
    return float(np.abs(gap).sum() / y.size)


def _average_ranks(x: FloatArray) -> FloatArray:
    """1-based ranks of x, tied values sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def roc_auc(prob_up: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney); NaN unless both classes are present."""
    p, y = _scored(prob_up, outcome)
    n_up = int((y == 1.0).sum())
    n_down = y.size - n_up
    if n_up == 0 or n_down == 0:
        return float("nan")
    rank_sum = _average_ranks(p)[y == 1.0].sum()
    return float((rank_sum - n_up * (n_up + 1) / 2.0) / (n_up * n_down))


@dataclass(frozen=True, slots=True)
class ForecastReport:
    """Direction-forecast quality over the scored rows (ties and missing excluded)."""

    n: int
    n_ties: int
    n_missing: int
    base_rate: float
    accuracy: float
    log_loss: float
    brier: float
    ece: float
    roc_auc: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def forecast_report(
    prob_up: npt.ArrayLike, outcome: npt.ArrayLike, n_bins: int = 10
) -> ForecastReport:
    """Every direction metric at once, with the counts of excluded rows."""
    p, y = _check_direction(prob_up, outcome)
    ties = np.isnan(y)
    missing = ~ties & np.isnan(p)
    return ForecastReport(
        n=int(y.size - ties.sum() - missing.sum()),
        n_ties=int(ties.sum()),
        n_missing=int(missing.sum()),
        base_rate=base_rate(y[~missing]),
        accuracy=accuracy(p, y),
        log_loss=log_loss(p, y),
        brier=brier(p, y),
        ece=ece(p, y, n_bins),
        roc_auc=roc_auc(p, y),
    )


def majority_class_baseline(
    train_outcome: npt.ArrayLike, test_outcome: npt.ArrayLike, n_bins: int = 10
) -> ForecastReport:
    """Score the constant forecast prob_up = training base rate on the test outcomes."""
    rate = base_rate(train_outcome)
    if np.isnan(rate):
        raise ValueError("train_outcome has no resolved (non-tie) outcomes")
    y = _as_1d(test_outcome, "test_outcome")
    return forecast_report(np.full(y.shape, rate), y, n_bins)


# --------------------------------------------------------------------------- trading


def equity_from_returns(returns: npt.ArrayLike, start: float = 1.0) -> FloatArray:
    """Compounded equity curve: `start` followed by one value per return (n + 1 values)."""
    r = _as_1d(returns, "returns")
    return np.concatenate(([start], start * np.cumprod(1.0 + r)))


def _check_equity(equity: npt.ArrayLike) -> FloatArray:
    e = _as_1d(equity, "equity")
    if e.size and (not np.isfinite(e).all() or (e < 0.0).any() or e[0] <= 0.0):
        raise ValueError("equity must be finite, >= 0, and start > 0")
    return e


def total_return(equity: npt.ArrayLike) -> float:
    """Last equity / first equity - 1; NaN for an empty curve."""
    e = _check_equity(equity)
    return float(e[-1] / e[0] - 1.0) if e.size else float("nan")


def max_drawdown(equity: npt.ArrayLike) -> float:
    """Largest fall below the running peak, as a positive fraction; NaN if empty."""
    e = _check_equity(equity)
    if not e.size:
        return float("nan")
    return float(np.max(1.0 - e / np.maximum.accumulate(e)))


def sharpe(returns: npt.ArrayLike, periods_per_year: float) -> float:
    """Annualised Sharpe ratio of per-period returns; NaN when the std is zero."""
    r = _as_1d(returns, "returns")
    if r.size < 2:
        return float("nan")
    std = float(np.std(r, ddof=1))
    if std <= 1e-12 * float(np.max(np.abs(r))):  # constant up to float rounding
        return float("nan")
    return float(np.mean(r) / std * np.sqrt(periods_per_year))


def exposure(positions: npt.ArrayLike) -> float:
    """Fraction of periods holding a non-zero position; NaN if empty."""
    pos = _as_1d(positions, "positions")
    return float(np.mean(pos != 0.0)) if pos.size else float("nan")


def win_rate(trade_pnls: npt.ArrayLike) -> float:
    """Fraction of trades with PnL > 0; NaN with no trades."""
    pnl = _as_1d(trade_pnls, "trade_pnls")
    return float(np.mean(pnl > 0.0)) if pnl.size else float("nan")


def profit_factor(trade_pnls: npt.ArrayLike) -> float:
    """Gross profit / gross loss; inf with no losses, NaN with neither."""
    pnl = _as_1d(trade_pnls, "trade_pnls")
    gains, losses = float(pnl[pnl > 0.0].sum()), float(-pnl[pnl < 0.0].sum())
    if losses == 0.0:
        return float("inf") if gains > 0.0 else float("nan")
    return gains / losses


# --------------------------------------------------------------------------- per period


def week_start_ms(timestamps_ms: npt.ArrayLike) -> IntArray:
    """Monday 00:00 UTC of each timestamp's ISO week, in ms."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    days = ts // _DAY_MS
    return (days - (days + _EPOCH_WEEKDAY) % 7) * _DAY_MS


def _week_label(start_ms: int) -> str:
    year, week, _ = datetime.fromtimestamp(start_ms / 1000, tz=UTC).isocalendar()
    return f"{year}-W{week:02d}"


def per_period(
    timestamps_ms: npt.ArrayLike, metric: Callable[[slice], Mapping[str, float | int]]
) -> list[Row]:
    """One row per UTC week: `metric(rows_of_that_week)` plus week, start_ms and rows."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    if ts.ndim != 1 or (np.diff(ts) < 0).any():
        raise ValueError("timestamps_ms must be a 1-D non-decreasing array")
    if not ts.size:
        return []
    weeks = week_start_ms(ts)
    starts = np.flatnonzero(np.r_[True, weeks[1:] != weeks[:-1]])
    ends = np.r_[starts[1:], ts.size]
    rows: list[Row] = []
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        start = int(weeks[lo])
        head: Row = {"week": _week_label(start), "start_ms": start, "rows": hi - lo}
        rows.append({**head, **metric(slice(lo, hi))})
    return rows


def _check_length(timestamps_ms: npt.ArrayLike, n: int) -> None:
    if np.shape(timestamps_ms) != (n,):
        raise ValueError(f"timestamps_ms must hold one timestamp per row ({n})")


def forecast_by_week(
    timestamps_ms: npt.ArrayLike, prob_up: npt.ArrayLike, outcome: npt.ArrayLike
) -> list[Row]:
    """`forecast_report` per UTC week."""
    p, y = _check_direction(prob_up, outcome)
    _check_length(timestamps_ms, p.size)
    return per_period(timestamps_ms, lambda s: forecast_report(p[s], y[s]).as_dict())


def trading_by_week(
    timestamps_ms: npt.ArrayLike,
    returns: npt.ArrayLike,
    positions: npt.ArrayLike,
    periods_per_year: float,
) -> list[Row]:
    """Per UTC week: compounded return, Sharpe, max drawdown and exposure."""
    r, pos = _as_1d(returns, "returns"), _as_1d(positions, "positions")
    if r.shape != pos.shape:
        raise ValueError("returns and positions differ in length")
    _check_length(timestamps_ms, r.size)

    def week(s: slice) -> dict[str, float]:
        equity = equity_from_returns(r[s])
        return {
            "total_return": total_return(equity),
            "sharpe": sharpe(r[s], periods_per_year),
            "max_drawdown": max_drawdown(equity),
            "exposure": exposure(pos[s]),
        }

    return per_period(timestamps_ms, week)
