"""Run reports: Markdown + PNG plots in `backtests/reports/<run-id>/`.

Forecast quality of the fusion vs the simple average vs each model vs the majority
class (accuracy, log loss, Brier, ECE, ROC-AUC; ties excluded and counted), over the
whole run, over the rows where the fusion (not its fallback) decided, and per week;
trading over the evaluated window, which the report names (PnL net of fees, Sharpe,
drawdown, exposure, trades, win rate); the fusion's online training (losses, LR,
overfitting pauses, attention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from titan.engine.ledger import Ledger
from titan.evaluation import plots
from titan.evaluation.metrics import ForecastReport
from titan.evaluation.runs import (
    ForecastTable,
    TradingSummary,
    forecast_table,
    fusion_history,
    score_all,
    trading_summary,
    weekly,
)

METRICS = ("n", "n_ties", "accuracy", "log_loss", "brier", "ece", "roc_auc")
WEEKLY_METRICS = ("accuracy", "log_loss", "brier", "ece", "roc_auc")
WEEKLY_NOTE = (
    "UTC ISO weeks (Monday 00:00). Every competitor is scored on the same resolved "
    "predictions of the week; `ties` are excluded from every metric and counted."
)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def forecast_markdown(scores: Mapping[str, ForecastReport]) -> list[str]:
    lines = ["| model | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name, report in scores.items():
        values = asdict(report)
        lines.append(f"| {name} | " + " | ".join(fmt(values[m]) for m in METRICS) + " |")
    return lines


TRADING_WINDOW_KEYS = ("window_start_ms", "window_end_ms")


def trading_markdown(summary: TradingSummary) -> list[str]:
    rows = {k: v for k, v in asdict(summary).items() if k not in TRADING_WINDOW_KEYS}
    return ["| metric | value |", "|---|---|", *(f"| {k} | {fmt(v)} |" for k, v in rows.items())]


def _utc(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def trading_window_line(summary: TradingSummary, evaluate_from: int | None) -> str:
    """Which rows the trading figures cover, and what the warm-up left out."""
    span = (
        f"{_utc(summary.window_start_ms)} to {_utc(summary.window_end_ms)} "
        f"({summary.intervals} intervals)"
    )
    if evaluate_from is None:
        return f"Window: the whole run, {span}."
    return (
        f"Window: the evaluated period only, {span}; the warm-up before "
        f"{_utc(evaluate_from)} is excluded (its {summary.warmup_trades} closed round trips "
        "and their fees are not counted; its final equity is the starting equity)."
    )


def weekly_markdown(tables: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """One per-week table per metric, competitors as columns (ties excluded, counted)."""
    names = list(tables)
    weeks = tables[names[0]] if names else []
    head = "| week | resolved | ties | " + " | ".join(names) + " |"
    rule = "|---" * (len(names) + 3) + "|"
    lines: list[str] = []
    for metric in WEEKLY_METRICS:
        lines += ["", f"### {metric.replace('_', ' ')}", "", head, rule]
        for i, week in enumerate(weeks):
            cells = " | ".join(fmt(tables[n][i][metric]) for n in names)
            lines.append(f"| {week['week']} | {week['rows']} | {week['n_ties']} | {cells} |")
    return lines


def write_report(
    ledger: Ledger,
    out_dir: Path,
    model_names: Sequence[str],
    start_equity: float,
    periods_per_year: float,
    title: str,
    notes: Sequence[str] = (),
    evaluate_from: int | None = None,
) -> dict[str, Any]:
    """Write `report.md` and plots; returns the headline figures (for comparisons).

    With `evaluate_from` (ms), only predictions, equity and trades from then on are scored;
    the run before it was warm-up (models fitted, fusion learning, but not evaluated)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    since = pl.col("ts") >= (evaluate_from or 0)
    predictions = ledger.frame("predictions").filter(since)
    equity = ledger.frame("equity")
    table = forecast_table(predictions, model_names)
    overall = score_all(table)
    trading = trading_summary(
        equity, ledger.frame("fills"), start_equity, periods_per_year, evaluate_from
    )
    history = fusion_history(ledger.frame("fusion_stats"))
    plots.equity_plot(equity.filter(since), out_dir / "equity.png")
    plots.attention_plot(predictions, model_names, out_dir / "attention.png")
    plots.training_plot(history, out_dir / "fusion_training.png")
    lines = [f"# {title}", "", *notes, *_forecast_section(table, overall)]
    lines += _trading_section(trading, evaluate_from) + _fusion_section(history)
    (out_dir / "report.md").write_text("\n".join(lines))
    return {"forecast": {k: asdict(v) for k, v in overall.items()}, "trading": asdict(trading)}


def _forecast_section(table: ForecastTable, overall: Mapping[str, ForecastReport]) -> list[str]:
    lines = ["", "## Forecast quality (all resolved predictions)", "", *forecast_markdown(overall)]
    if table.fused.any():
        lines += ["", "## Forecast quality where the fusion decided (after its warm-up)", ""]
        lines += forecast_markdown(score_all(table, table.fused))
    lines += ["", "## Per week", "", WEEKLY_NOTE, *weekly_markdown(weekly(table))]
    return lines


def _trading_section(trading: TradingSummary, evaluate_from: int | None) -> list[str]:
    return [
        "",
        "## Trading (paper fills, fees and slippage included)",
        "",
        trading_window_line(trading, evaluate_from),
        "",
        *trading_markdown(trading),
        "",
        "![equity](equity.png)",
    ]


def _fusion_section(history: Mapping[str, Any]) -> list[str]:
    return [
        "",
        "## Fusion",
        "",
        _fusion_lines(history),
        "",
        "![training](fusion_training.png)",
        "",
        "![attention](attention.png)",
        "",
    ]


def _fusion_lines(history: Mapping[str, Any]) -> str:
    if not history:
        return "No fusion statistics were stored."
    last = {key: float(values[-1]) for key, values in history.items()}
    paused = int((history["is_overfitting"] > 0).sum())
    return (
        f"Samples seen {last['samples_seen']:.0f}, train steps {last['train_steps']:.0f}, "
        f"train loss {fmt(last['train_loss'])}, validation loss {fmt(last['val_loss'])}, "
        f"LR {last['current_lr']:.2e}, attention entropy {fmt(last['avg_attention_entropy'])}; "
        f"overfitting pause flagged in {paused} of {len(history['ts'])} snapshots."
    )
