"""The training report: Markdown, metrics JSON and loss curves of a walk-forward run.

Files under the report directory: ``report.md`` (overall table of every model, the
fusion over all of them, the simple average and the majority class on the same
out-of-sample rows, ties excluded; per-window log loss, accuracy and AUC; training
summary per fold and model), ``metrics.json`` (the same figures) and
``loss_curves.png`` (train and validation loss per optimiser step, one line per fold,
one panel per network).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from titan.evaluation.metrics import ForecastReport
from titan.evaluation.report import fmt, forecast_markdown
from titan.training.walkforward import FUSION, WalkForwardResult

LOSS_PNG, REPORT_MD, METRICS_JSON = "loss_curves.png", "report.md", "metrics.json"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def write_training_report(
    result: WalkForwardResult, out_dir: Path, title: str, notes: Sequence[str] = ()
) -> dict[str, Any]:
    """Write the report files; returns the metrics written to metrics.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    overall = result.scores()
    per_fold = [result.scores(rows) for rows in result.fold_rows()]
    loss_curves(result, out_dir / LOSS_PNG)
    lines = [f"# {title}", "", *notes, ""]
    lines += _overall_lines(result, overall)
    for metric in ("log_loss", "accuracy", "roc_auc"):
        lines += ["", f"## Per test window: {metric}", "", *_fold_table(result, per_fold, metric)]
    lines += ["", "## Training per fold", "", *_training_table(result)]
    lines += ["", "## Loss curves", "", f"![loss curves]({LOSS_PNG})", ""]
    (out_dir / REPORT_MD).write_text("\n".join(lines))
    metrics = {
        "overall": {k: v.as_dict() for k, v in overall.items()},
        "folds": [_fold_json(result, i, scores) for i, scores in enumerate(per_fold)],
        "fusion_active": result.fusion_active,
    }
    (out_dir / METRICS_JSON).write_text(json.dumps(metrics, indent=1, default=float))
    return metrics


def _overall_lines(result: WalkForwardResult, overall: Mapping[str, ForecastReport]) -> list[str]:
    span = f"{iso(int(result.ts[0]))} .. {iso(int(result.ts[-1]))}" if len(result.ts) else "-"
    return [
        f"## Out of sample, all {len(result.folds)} test windows ({span} UTC)",
        "",
        "Same rows for every forecaster; ties excluded and counted. The fusion is the",
        "TransformerFusion over all models, replayed online (each outcome learned after it",
        f"resolves); it answered with its network on {fmt(result.fusion_active)} of the rows",
        "and with the simple average otherwise (its gate).",
        "",
        *forecast_markdown(overall),
    ]


def _fold_table(
    result: WalkForwardResult, per_fold: Sequence[Mapping[str, ForecastReport]], metric: str
) -> list[str]:
    names = list(result.competitors)
    lines = [
        "| fold | test window (UTC) | n | " + " | ".join(names) + " |",
        "|---" * (len(names) + 3) + "|",
    ]
    for fold, scores in zip(result.folds, per_fold, strict=True):
        window = f"{iso(fold.test_ts[0])} .. {iso(fold.test_ts[1])}"
        cells = [fmt(getattr(scores[name], metric)) for name in names]
        lines.append(
            f"| {fold.index} | {window} | {scores[FUSION].n} | " + " | ".join(cells) + " |"
        )
    return lines


def _training_table(result: WalkForwardResult) -> list[str]:
    lines = [
        "| fold | model | fitted | seconds | part: steps / best step / best val loss / stopped |",
        "|---|---|---|---|---|",
    ]
    for fold in result.folds:
        for name, fit in fold.fits.items():
            parts = "; ".join(
                f"{part}: {h.steps} / {h.best_step} / {fmt(h.best_val)} / "
                f"{'early' if h.stopped_early else 'budget'}"
                for part, h in fit.histories.items()
            )
            lines.append(
                f"| {fold.index} | {name} | {fit.fitted} | {fit.seconds:.1f} | {parts or '-'} |"
            )
    return lines


def _fold_json(
    result: WalkForwardResult, i: int, scores: Mapping[str, ForecastReport]
) -> dict[str, Any]:
    fold = result.folds[i]
    return {
        "fold": fold.index,
        "train_ts": list(fold.train_ts),
        "test_ts": list(fold.test_ts),
        "scores": {k: v.as_dict() for k, v in scores.items()},
        "training": {
            name: {
                "seconds": fit.seconds,
                "samples": fit.samples,
                "fitted": fit.fitted,
                "histories": {part: h.to_json() for part, h in fit.histories.items()},
            }
            for name, fit in fold.fits.items()
        },
    }


def loss_curves(result: WalkForwardResult, path: Path) -> None:
    """One panel per (model, part): validation (solid) and training (dashed) loss."""
    panels = sorted(
        {(n, p) for f in result.folds for n, fit in f.fits.items() for p in fit.histories}
    )
    cols = min(3, max(1, len(panels)))
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, (name, part) in zip(axes.flat, panels, strict=False):
        for fold in result.folds:
            history = fold.fits[name].histories.get(part) if name in fold.fits else None
            if history is None or not history.records:
                continue
            steps = [r.step for r in history.records]
            val = [r.val_loss for r in history.records]
            line = ax.plot(steps, val, lw=1.2, marker="o", ms=2.5)[0]
            train = [r.train_loss for r in history.records]
            ax.plot(steps, train, lw=0.8, ls="--", marker=".", ms=2, c=line.get_color())
        ax.set(title=f"{name} ({part})" if part not in ("network", name) else name, xlabel="step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("validation (solid) and training (dashed) loss, one colour per fold", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
