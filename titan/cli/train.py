"""`titan train`: walk-forward training of the base models on a stored series.

Writes the report under ``<reports>/train-<id>/`` and the newest fold's models into the
model registry (``training.registry.dir``, default ``state/models``).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from titan.cli.common import (
    ConfigOption,
    SetOption,
    app,
    console,
    load_or_exit,
    parse_overrides,
    setup_logging,
)
from titan.cli.run import run_id
from titan.clock import LiveClock
from titan.config import TitanConfig
from titan.config.training import TrainingConfig
from titan.models.dataset import Split
from titan.models.neural.fitting import EvalRecord
from titan.training.fitting import ModelFit
from titan.training.pipeline import TrainOutcome, TrainRequest, run_training
from titan.training.walkforward import Hooks

CLASSIC = ("trend_vic", "oscillator", "volume_metrix", "ml_classifier")
ALIASES = {"ensemble": "neural_ensemble"}


def model_names(models: str, classic: bool) -> tuple[str, ...]:
    """'lstm,cnn,ensemble' -> ('lstm', 'cnn', 'neural_ensemble') (+ the classic four)."""
    names = [ALIASES.get(n.strip(), n.strip()) for n in models.split(",") if n.strip()]
    extra = [n for n in CLASSIC if classic and n not in names]
    return tuple(dict.fromkeys([*extra, *names]))


def training_config(settings: TitanConfig, changes: dict[str, Any]) -> TrainingConfig:
    """The config's `[training]` section (defaults when absent) with CLI changes applied."""
    base = getattr(settings, "training", None)
    data = (base if isinstance(base, TrainingConfig) else TrainingConfig()).model_dump()
    for dotted, value in changes.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return TrainingConfig.model_validate(data)


@app.command("train")
def train_command(
    symbol: Annotated[str, typer.Option(help="Stored symbol, e.g. BTC/USDT.")],
    store: Annotated[Path | None, typer.Option(help="Candle store (default data.store).")] = None,
    exchange: Annotated[str | None, typer.Option(help="Exchange (default data.exchange).")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Timeframe (default data.timeframe).")
    ] = None,
    models: Annotated[
        str,
        typer.Option(help="Comma-separated models: lstm,cnn,attention,ensemble,multiscale_cnn."),
    ] = "lstm,cnn,attention,ensemble",
    classic: Annotated[
        bool, typer.Option(help="Also train and score the four classic models.")
    ] = True,
    train_days: Annotated[float | None, typer.Option(help="Training window (days).")] = None,
    test_days: Annotated[float | None, typer.Option(help="Test window (days).")] = None,
    step_days: Annotated[float | None, typer.Option(help="Fold advance (days).")] = None,
    expanding: Annotated[bool | None, typer.Option(help="Expanding training window.")] = None,
    max_folds: Annotated[int | None, typer.Option(help="Newest N folds; 0 = all.")] = None,
    last_days: Annotated[float | None, typer.Option(help="Use only the newest N days.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimiser steps per fit.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Max epochs per fit.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Mini-batch size.")] = None,
    objective: Annotated[str | None, typer.Option(help="return | direction.")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the neural models.")] = None,
    registry: Annotated[Path | None, typer.Option(help="Model registry directory.")] = None,
    register: Annotated[bool, typer.Option(help="Write checkpoints to the registry.")] = True,
    out: Annotated[Path | None, typer.Option(help="Report directory.")] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Walk-forward train and evaluate the models; write a report and registry checkpoints."""
    settings = load_or_exit(config, parse_overrides(overrides))
    setup_logging(settings)
    changes = {
        "walk_forward.train_days": train_days,
        "walk_forward.test_days": test_days,
        "walk_forward.step_days": step_days,
        "walk_forward.expanding": expanding,
        "walk_forward.max_folds": max_folds or None,
        "neural.trainer.max_steps": max_steps,
        "neural.trainer.max_epochs": epochs,
        "neural.trainer.batch_size": batch_size,
        "neural.trainer.device": device,
        "neural.objective": objective,
        "neural.seed": seed,
        "registry.dir": registry,
    }
    training = _validated(settings, changes, all_folds=max_folds == 0)
    rid = run_id()
    request = TrainRequest(
        store=store or settings.data.store,
        exchange=exchange or settings.data.exchange,
        symbol=symbol,
        timeframe=timeframe or settings.data.timeframe,
        names=model_names(models, classic),
        out_dir=out or Path(settings.engine.reports_dir) / f"train-{rid}",
        created_ms=LiveClock().now_ms(),
        training=training,
        models=settings.models,
        last_days=last_days,
        register=register,
        command=shlex.join(["titan", *sys.argv[1:]]),
    )
    outcome = _run(request)
    _print(outcome)


def _validated(settings: TitanConfig, changes: dict[str, Any], all_folds: bool) -> TrainingConfig:
    try:
        training = training_config(settings, changes)
    except ValueError as exc:
        console.print(f"[red]invalid training option:[/red] {exc}")
        raise typer.Exit(2) from None
    if all_folds:
        walk = training.walk_forward.model_copy(update={"max_folds": None})
        training = training.model_copy(update={"walk_forward": walk})
    return training


def _run(request: TrainRequest) -> TrainOutcome:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bars:
        folds = bars.add_task("folds", total=None)
        fits = bars.add_task("models", total=len(request.names))

        def on_fold(index: int, total: int, split: Split) -> None:
            bars.update(
                folds, total=total, completed=index, description=f"fold {index + 1}/{total}"
            )
            bars.update(fits, completed=0, description="models")

        def on_fitted(index: int, fit: ModelFit) -> None:
            bars.advance(fits)
            bars.update(fits, description=f"fitted {fit.name} ({fit.seconds:.0f} s)")

        def on_eval(model: str, part: str, record: EvalRecord) -> None:
            label = model if part in ("network", model) else f"{model}/{part}"
            bars.update(fits, description=f"{label} step {record.step} val {record.val_loss:.4f}")

        try:
            outcome = run_training(request, Hooks(on_fold, on_fitted, on_eval))
        except (FileNotFoundError, ValueError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        bars.update(folds, completed=len(outcome.result.folds))
    return outcome


def _print(outcome: TrainOutcome) -> None:
    table = Table("forecaster", "n", "accuracy", "log loss", "AUC", "ECE", title="out of sample")
    for name, scores in outcome.result.scores().items():
        table.add_row(
            name,
            str(scores.n),
            f"{scores.accuracy:.4f}",
            f"{scores.log_loss:.4f}",
            f"{scores.roc_auc:.4f}",
            f"{scores.ece:.4f}",
        )
    console.print(table)
    for checkpoint in outcome.checkpoints:
        console.print(f"registered {checkpoint.model} v{checkpoint.version}: {checkpoint.path}")
    console.print(f"report: {outcome.report}")
