"""A small, fast engine configuration over the bundled sample, shared by engine tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polars as pl

from titan.config import TitanConfig, load_config
from titan.engine.compose import build_engine
from titan.engine.engine import Engine
from titan.engine.records import RunSummary

SAMPLE = Path(__file__).resolve().parents[2] / "backtests" / "data"
START = "2025-05-04T16:00:00"

SMALL = {
    "feed.start": START,
    "feed.end": "2025-05-07T03:00:00",  # ~3540 one-minute intervals
    "data.store": str(SAMPLE),
    "models.min_train": "400",
    "models.train_window": "1500",
    "models.refit_every": "480",
    "models.calibration.min_samples": "100",
    "models.lightgbm.n_estimators": "25",
    "models.lightgbm.min_samples": "300",
    "models.lightgbm.min_data_in_leaf": "40",
    "fusion.min_samples": "150",
    "fusion.train_every": "8",
    "fusion.buffer_size": "800",
    "fusion.warmup_steps": "20",
    "engine.checkpoint_every": "360",
    "engine.stats_every": "120",
    "logging.level": "warning",
}


def small_config(state_dir: Path, **extra: Any) -> TitanConfig:
    overrides = {
        **SMALL,
        "runtime.state_dir": str(state_dir),
        **{k: str(v) for k, v in extra.items()},
    }
    return load_config(overrides=overrides, env={})


def run(
    config: TitanConfig, max_batch: int | None = None, stop_after: int | None = None
) -> tuple[Engine, RunSummary]:
    engine = build_engine(config)
    if max_batch is not None:
        engine.max_batch = max_batch
    if stop_after is not None:

        def stop_at(_interval: object) -> None:
            if engine.summary.intervals >= stop_after:
                engine.request_stop()

        engine.on_interval = stop_at
    summary = asyncio.run(engine.run())
    return engine, summary


def tables(engine: Engine) -> dict[str, pl.DataFrame]:
    names = ("predictions", "fills", "equity", "fusion_stats")
    return {name: engine.ledger.frame(name) for name in names}


def assert_same_tables(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    for name, frame in left.items():
        other = right[name]
        assert frame.columns == other.columns, name
        assert frame.height == other.height, f"{name}: {frame.height} != {other.height} rows"
        assert frame.equals(other), f"{name} differs"
