"""What `titan train` runs: load a stored series, walk forward, report, register.

The newest fold's models (trained on the newest training window, scored on the newest
test window) are written to the model registry with their data range and metrics; the
engine loads the newest valid version of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from titan.config.fusion import FusionConfig
from titan.config.models import ModelsConfig
from titan.config.training import TrainingConfig
from titan.data.timeframes import timeframe_ms
from titan.features.spec import WARMUP
from titan.models.base import BaseModel
from titan.models.dataset import purge_gap
from titan.training.data import load_series, samples
from titan.training.fitting import ModelSpec
from titan.training.registry import Checkpoint, ModelRegistry
from titan.training.report import iso, write_training_report
from titan.training.walkforward import Hooks, WalkForwardResult, run_walk_forward

log = structlog.get_logger(__name__)
DAY_MS = 86_400_000


@dataclass(frozen=True)
class TrainRequest:
    store: Path
    exchange: str
    symbol: str
    timeframe: str
    names: tuple[str, ...]
    out_dir: Path
    created_ms: int
    training: TrainingConfig = field(default_factory=TrainingConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    fusion: FusionConfig = field(default_factory=lambda: FusionConfig(device="cpu"))
    last_days: float | None = None
    register: bool = True
    command: str = ""


@dataclass(frozen=True)
class TrainOutcome:
    result: WalkForwardResult
    metrics: dict[str, Any]
    checkpoints: list[Checkpoint]
    report: Path


def run_training(request: TrainRequest, hooks: Hooks | None = None) -> TrainOutcome:
    step = timeframe_ms(request.timeframe)
    last = None if request.last_days is None else int(request.last_days * DAY_MS / step)
    series = load_series(request.store, request.exchange, request.symbol, request.timeframe, last)
    spec = ModelSpec(request.training.neural, request.models)
    wf = request.training.walk_forward
    data = samples(series, request.training.neural.lookback, wf.horizon)
    log.info(
        "training_started", symbol=request.symbol, candles=len(series.close), samples=len(data)
    )
    result = run_walk_forward(data, request.names, spec, wf, step, request.fusion, hooks)
    if not result.folds:
        raise ValueError("not enough data for one walk-forward fold; lower --train-days")
    notes = _notes(request, len(series.close), int(series.ts[0]), int(series.ts[-1]))
    metrics = write_training_report(result, request.out_dir, _title(request), notes)
    checkpoints = _register(request, result) if request.register else []
    log.info("training_finished", report=str(request.out_dir), checkpoints=len(checkpoints))
    return TrainOutcome(result, metrics, checkpoints, request.out_dir / "report.md")


def _title(request: TrainRequest) -> str:
    return f"Titan walk-forward training: {request.symbol} {request.timeframe} ({request.exchange})"


def _purge_text(request: TrainRequest) -> str:
    wf, lookback = request.training.walk_forward, request.training.neural.lookback
    gap = purge_gap(wf.horizon, lookback, wf.extra_purge)
    return (
        f"{gap} samples (horizon {wf.horizon} + window {lookback}"
        f" + feature look-back {WARMUP} + extra {wf.extra_purge})"
    )


def _notes(request: TrainRequest, candles: int, first: int, last: int) -> list[str]:
    wf, trainer = request.training.walk_forward, request.training.neural.trainer
    return [
        f"Command: `{request.command}`" if request.command else "",
        f"Data: {candles:,} candles, {iso(first)} .. {iso(last)} UTC, from `{request.store}`.",
        f"Walk-forward: train {wf.train_days:g} d ({'expanding' if wf.expanding else 'rolling'}),"
        f" purge {_purge_text(request)},"
        f" test {wf.test_days:g} d, newest {wf.max_folds or 'all'} folds;"
        f" label: next-{wf.horizon}-candle direction.",
        f"Neural budget per fit: <= {trainer.max_steps} steps of {trainer.batch_size},"
        f" <= {trainer.max_epochs} epochs, early stopping (patience {trainer.patience}"
        f" validations every {trainer.eval_every} steps), objective"
        f" `{request.training.neural.objective}`, device `{trainer.device}`.",
    ]


def _register(request: TrainRequest, result: WalkForwardResult) -> list[Checkpoint]:
    registry = ModelRegistry(request.training.registry.dir, request.training.registry.keep)
    fold = result.folds[-1]
    scores = result.scores(result.fold_rows()[-1])
    data = {
        "exchange": request.exchange,
        "symbols": [request.symbol],
        "timeframe": request.timeframe,
        "train_start_ms": fold.train_ts[0],
        "train_end_ms": fold.train_ts[1],
        "test_start_ms": fold.test_ts[0],
        "test_end_ms": fold.test_ts[1],
    }
    return [
        registry.save(
            model,
            {
                "data": data,
                "metrics": {"newest_test_window": scores[name].as_dict()},
                "training": request.training.model_dump(mode="json"),
            },
            request.created_ms,
        )
        for name, model in _fitted(result.last_models, request.names)
    ]


def _fitted(models: dict[str, BaseModel], names: Sequence[str]) -> list[tuple[str, BaseModel]]:
    return [(n, models[n]) for n in names if n in models]
