"""Run reports: Markdown + PNG plots in `backtests/reports/<run-id>/`.

Forecast quality of the fusion vs the simple average vs each model vs the majority
class (accuracy, log loss, Brier, ECE, ROC-AUC; ties excluded and counted), over the
whole run, over the rows where the fusion (not its fallback) decided, and per week;
trading (PnL net of fees, Sharpe, drawdown, exposure, trades, win rate); the fusion's
online training (losses, LR, overfitting pauses, attention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from titan.engine.ledger import Ledger
from titan.evaluation import plots
from titan.evaluation.metrics import ForecastReport
from titan.evaluation.runs import (
    TradingSummary,
    forecast_table,
    fusion_history,
    score_all,
    trading_summary,
    weekly,
)

METRICS = ("n", "n_ties", "accuracy", "log_loss", "brier", "ece", "roc_auc")


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


def trading_markdown(summary: TradingSummary) -> list[str]:
    rows = asdict(summary)
    return ["| metric | value |", "|---|---|", *(f"| {k} | {fmt(v)} |" for k, v in rows.items())]


def weekly_markdown(tables: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    names = list(tables)
    lines = [
        "| week | rows | " + " | ".join(f"{n} acc / AUC" for n in names) + " |",
        "|---" * (len(names) + 2) + "|",
    ]
    for i, row in enumerate(tables[names[0]]):
        cells = [f"{fmt(tables[n][i]['accuracy'])} / {fmt(tables[n][i]['roc_auc'])}" for n in names]
        lines.append(f"| {row['week']} | {row['rows']} | " + " | ".join(cells) + " |")
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

    With `evaluate_from` (ms), only predictions and equity from then on are scored; the
    run before it was warm-up (models fitted, fusion learning, but not evaluated)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    since = pl.col("ts") >= (evaluate_from or 0)
    predictions = ledger.frame("predictions").filter(since)
    equity_all = ledger.frame("equity")
    equity, before = equity_all.filter(since), equity_all.filter(~since)
    start = float(before["equity"][-1]) if before.height else start_equity
    table = forecast_table(predictions, model_names)
    overall = score_all(table)
    fused_only = score_all(table, table.fused) if table.fused.any() else {}
    fills = ledger.frame("fills").filter(since)
    trading = trading_summary(equity, fills, start, periods_per_year)
    history = fusion_history(ledger.frame("fusion_stats"))
    plots.equity_plot(equity, out_dir / "equity.png")
    plots.attention_plot(predictions, model_names, out_dir / "attention.png")
    plots.training_plot(history, out_dir / "fusion_training.png")
    lines = [f"# {title}", "", *notes, "", "## Forecast quality (all resolved predictions)", ""]
    lines += forecast_markdown(overall)
    if fused_only:
        lines += ["", "## Forecast quality where the fusion decided (after its warm-up)", ""]
        lines += forecast_markdown(fused_only)
    lines += ["", "## Per week", "", *weekly_markdown(weekly(table, ["fusion", "simple average"]))]
    lines += [
        "",
        "## Trading (paper fills, fees and slippage included)",
        "",
        *trading_markdown(trading),
    ]
    lines += [
        "",
        "![equity](equity.png)",
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
    (out_dir / "report.md").write_text("\n".join(lines))
    return {"forecast": {k: asdict(v) for k, v in overall.items()}, "trading": asdict(trading)}


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
