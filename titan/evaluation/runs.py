"""Turn a run's ledger into evaluation tables: forecasts vs baselines, trading, fusion.

Forecast rows are resolved predictions. Competitors, all scored on the same rows with
ties excluded: the fusion (the probability the engine acted on), the simple average of
the models, each model alone, and the majority class learned online (the base rate of
outcomes resolved before the prediction was made: past data only).

Trading figures cover the evaluated window only (after a warm-up, e.g. `titan history`):
counts and fees are the differences of the cumulative account snapshots at the window's
edges, so round trips closed during the warm-up are not counted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from titan.evaluation.metrics import (
    FloatArray,
    ForecastReport,
    forecast_by_week,
    forecast_report,
    max_drawdown,
    sharpe,
    total_return,
)

_OUTCOME = {"UP": 1.0, "DOWN": 0.0, "TIE": np.nan}


@dataclass(frozen=True)
class ForecastTable:
    ts: np.ndarray
    outcome: FloatArray
    competitors: dict[str, FloatArray]  # name -> prob_up per resolved prediction
    fused: np.ndarray  # bool: the fusion (not its fallback) produced the probability


def forecast_table(predictions: pl.DataFrame, model_names: Sequence[str]) -> ForecastTable:
    resolved = predictions.filter(pl.col("seq").is_not_null()).sort("ts", "symbol")
    outcome = np.array([_OUTCOME[o] for o in resolved["outcome"].to_list()], dtype=np.float64)
    probs = np.array([json.loads(i)["p"] for i in resolved["inputs"].to_list()], dtype=np.float64)
    probs = probs.reshape(len(outcome), len(model_names))
    ts = resolved["ts"].to_numpy()
    competitors = {
        "fusion": resolved["prob_up"].to_numpy().astype(np.float64),
        "simple average": resolved["baseline"].to_numpy().astype(np.float64),
        "majority class": online_base_rate(ts, resolved["target_ts"].to_numpy(), outcome),
    }
    for j, name in enumerate(model_names):
        competitors[name] = probs[:, j]
    return ForecastTable(ts, outcome, competitors, resolved["fused"].to_numpy().astype(bool))


def online_base_rate(ts: np.ndarray, target_ts: np.ndarray, outcome: FloatArray) -> FloatArray:
    """For each prediction: base rate of the outcomes resolved by its time (0.5 before any)."""
    order = np.argsort(target_ts, kind="stable")
    resolved_at = target_ts[order]
    decided = np.where(np.isfinite(outcome[order]), 1.0, 0.0)
    ups = np.cumsum(np.nan_to_num(outcome[order]))
    counts = np.cumsum(decided)
    seen = np.searchsorted(resolved_at, ts, side="right")
    n = np.where(seen > 0, counts[np.maximum(seen - 1, 0)], 0.0)
    u = np.where(seen > 0, ups[np.maximum(seen - 1, 0)], 0.0)
    return np.where(n > 0, u / np.maximum(n, 1.0), 0.5)


def score_all(table: ForecastTable, mask: np.ndarray | None = None) -> dict[str, ForecastReport]:
    keep = np.ones(len(table.outcome), bool) if mask is None else mask
    return {
        name: forecast_report(p[keep], table.outcome[keep]) for name, p in table.competitors.items()
    }


def weekly(
    table: ForecastTable, names: Sequence[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """`forecast_by_week` for each competitor (all of them by default), ties excluded."""
    order = np.argsort(table.ts, kind="stable")
    return {
        name: forecast_by_week(
            table.ts[order], table.competitors[name][order], table.outcome[order]
        )
        for name in (table.competitors if names is None else names)
    }


@dataclass(frozen=True)
class TradingSummary:
    """Trading over the evaluated window only: equity rows and fills with
    `window_start_ms <= ts <= window_end_ms`. `trades` are the round trips closed in the
    window, `win_rate` their share of winners, `fees` and `fills` those of the window's
    fills (cumulative account counters differenced at the window's edges)."""

    window_start_ms: int | None
    window_end_ms: int | None
    intervals: int
    start_equity: float
    end_equity: float
    pnl: float
    total_return: float
    sharpe: float
    max_drawdown: float
    exposure: float
    trades: int
    win_rate: float
    fees: float
    fills: int
    warmup_trades: int  # round trips closed before the window (not counted above)


@dataclass(frozen=True)
class _Counters:
    """Cumulative account counters of one stored snapshot (zero before any trade)."""

    trades: int = 0
    wins: int = 0
    fees: float = 0.0


def trading_summary(
    equity: pl.DataFrame,
    fills: pl.DataFrame,
    start_equity: float,
    periods_per_year: float,
    evaluate_from: int | None = None,
) -> TradingSummary:
    """Trading figures of the window `ts >= evaluate_from` (the whole run when None).

    `equity` and `fills` are the run's whole ledger tables; the rows before the window
    (warm-up) only set its starting equity and counters."""
    since = pl.col("ts") >= (evaluate_from or 0)
    window, before = equity.filter(since), equity.filter(~since)
    start = float(before["equity"][-1]) if before.height else start_equity
    first, last = last_counters(before), last_counters(equity)
    trades, wins = last.trades - first.trades, last.wins - first.wins
    values = np.concatenate([[start], window["equity"].to_numpy().astype(np.float64)])
    ts = window["ts"].to_list()
    return TradingSummary(
        window_start_ms=int(ts[0]) if ts else None,
        window_end_ms=int(ts[-1]) if ts else None,
        intervals=window.height,
        start_equity=start,
        end_equity=float(values[-1]),
        pnl=float(values[-1] - start),
        total_return=total_return(values),
        sharpe=sharpe(np.diff(values) / values[:-1], periods_per_year),
        max_drawdown=max_drawdown(values),
        exposure=float(np.mean(window["exposure"].to_numpy() > 0)) if window.height else 0.0,
        trades=trades,
        win_rate=wins / trades if trades else float("nan"),
        fees=last.fees - first.fees,
        fills=fills.filter(since).height,
        warmup_trades=first.trades,
    )


def last_counters(equity: pl.DataFrame) -> _Counters:
    """The counters of the last stored account snapshot among `equity` rows."""
    states = equity["state"].drop_nulls()
    if states.is_empty():
        return _Counters()
    state = json.loads(states[-1])
    trades = int(state.get("trade_count", 0))
    wins = state.get("win_count")
    if wins is None:  # older snapshots: the rate only
        wins = round(float(state.get("win_rate") or 0.0) * trades)
    return _Counters(trades, int(wins), float(state.get("fees_paid", 0.0)))


def fusion_history(stats: pl.DataFrame) -> dict[str, np.ndarray]:
    """Columns of the stored fusion statistics over time (ts, losses, LR, flags ...)."""
    if stats.height == 0:
        return {}
    rows = [json.loads(s) for s in stats["stats"].to_list()]
    keys = (
        "train_loss",
        "val_loss",
        "current_lr",
        "is_overfitting",
        "avg_attention_entropy",
        "samples_seen",
        "train_steps",
    )
    history = {"ts": stats["ts"].to_numpy()}
    for key in keys:
        history[key] = np.array([_number(row.get(key)) for row in rows], dtype=np.float64)
    return history


def _number(value: Any) -> float:
    if value is None:
        return float("nan")
    return float(value)
