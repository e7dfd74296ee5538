"""Turn a run's ledger into evaluation tables: forecasts vs baselines, trading, fusion.

Forecast rows are resolved predictions. Competitors, all scored on the same rows with
ties excluded: the fusion (the probability the engine acted on), the simple average of
the models, each model alone, and the majority class learned online (the base rate of
outcomes resolved before the prediction was made: past data only).
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


def weekly(table: ForecastTable, names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    order = np.argsort(table.ts, kind="stable")
    return {
        name: forecast_by_week(
            table.ts[order], table.competitors[name][order], table.outcome[order]
        )
        for name in names
    }


@dataclass(frozen=True)
class TradingSummary:
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


def trading_summary(
    equity: pl.DataFrame, fills: pl.DataFrame, start: float, periods_per_year: float
) -> TradingSummary:
    """Trading figures from the per-interval equity rows, starting from `start` equity."""
    values = np.concatenate([[start], equity["equity"].to_numpy().astype(np.float64)])
    last_state = json.loads(equity["state"][-1]) if equity.height else {}
    returns = np.diff(values) / values[:-1]
    return TradingSummary(
        start_equity=start,
        end_equity=float(values[-1]),
        pnl=float(values[-1] - start),
        total_return=total_return(values),
        sharpe=sharpe(returns, periods_per_year),
        max_drawdown=max_drawdown(values),
        exposure=float(np.mean(equity["exposure"].to_numpy() > 0)) if equity.height else 0.0,
        trades=int(last_state.get("trade_count", 0)),
        win_rate=_number(last_state.get("win_rate")),
        fees=float(last_state.get("fees_paid", 0.0)),
        fills=fills.height,
    )


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
