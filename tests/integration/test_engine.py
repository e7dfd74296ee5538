"""The engine end to end on the bundled sample: one code path, exact resumption, batching."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.integration.engine_setup import assert_same_tables, run, small_config, tables
from titan.engine.compose import build_engine
from titan.engine.feed import Interval


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """An uninterrupted batched run: the reference ledger."""
    engine, summary = run(small_config(tmp_path_factory.mktemp("reference")))
    assert summary.finished
    return tables(engine)


def test_every_prediction_resolved_once_and_learned(reference: dict[str, pl.DataFrame]) -> None:
    predictions = reference["predictions"]
    resolved = predictions.filter(pl.col("seq").is_not_null())
    assert predictions.height > 6000  # two symbols, ~3500 intervals
    assert predictions.height - resolved.height <= 2  # only the last horizon is pending
    assert sorted(resolved["seq"].to_list()) == list(range(1, resolved.height + 1))
    assert set(resolved["outcome"].unique().to_list()) <= {"UP", "DOWN", "TIE"}
    assert resolved["fused"].sum() > 1000  # the fusion took over after its warm-up
    stats = [json.loads(s) for s in reference["fusion_stats"]["stats"].to_list()]
    assert stats[-1]["train_steps"] > 100


def test_outcomes_match_the_candles(reference: dict[str, pl.DataFrame]) -> None:
    resolved = reference["predictions"].filter(pl.col("seq").is_not_null())
    up = resolved.filter(pl.col("outcome_close") > pl.col("close"))["outcome"].unique().to_list()
    tie = resolved.filter(pl.col("outcome_close") == pl.col("close"))["outcome"].unique().to_list()
    assert up == ["UP"] and tie == ["TIE"]
    assert (resolved["target_ts"] - resolved["ts"] == 60_000).all()


def test_batched_decisions_equal_step_by_step(
    tmp_path: Path, reference: dict[str, pl.DataFrame]
) -> None:
    """The replay's shortcuts change nothing in the ledger: the live-like path (a decision
    per interval, features streamed candle by candle) writes the reference ledger, which
    was made with inference batched between state changes and precomputed feature rows."""
    config = small_config(tmp_path, **{"feed.precompute_features": "false"})
    engine, _ = run(config, max_batch=1)
    assert_same_tables(tables(engine), reference)


def test_stop_and_resume_gives_the_uninterrupted_ledger(
    tmp_path: Path, reference: dict[str, pl.DataFrame]
) -> None:
    config = small_config(tmp_path)
    for stop_after in (700, 1300):  # two interruptions between checkpoints
        _, summary = run(config, stop_after=stop_after)
        assert not summary.finished
    engine, summary = run(config)
    assert summary.finished
    assert_same_tables(tables(engine), reference)


def test_corrupt_newest_checkpoint_falls_back_and_still_matches(
    tmp_path: Path, reference: dict[str, pl.DataFrame]
) -> None:
    config = small_config(tmp_path)
    run(config, stop_after=2000)
    checkpoints = sorted((tmp_path / "checkpoints").glob("ckpt-*"))
    (checkpoints[-1] / "engine.pkl").write_bytes(b"garbage")
    engine, _ = run(config)
    assert_same_tables(tables(engine), reference)


def test_decisions_never_see_future_candles(
    tmp_path: Path, reference: dict[str, pl.DataFrame]
) -> None:
    """A run that ends earlier makes exactly the same predictions up to its end."""
    engine, _ = run(small_config(tmp_path, **{"feed.end": "2025-05-05T22:00:00"}))
    short = engine.ledger.frame("predictions")
    cutoff = short["ts"].max()
    full = reference["predictions"].filter(pl.col("ts") <= cutoff)
    columns = ["symbol", "ts", "prob_up", "baseline", "inputs", "attention"]
    assert short.select(columns).equals(full.select(columns))


def test_trading_is_flat_at_the_end_and_equity_consistent(
    reference: dict[str, pl.DataFrame],
) -> None:
    equity = reference["equity"]
    final = json.loads(equity["state"][-1])
    assert all(abs(p["quantity"]) < 1e-12 for p in final["positions"].values())
    assert np.isclose(final["equity"], final["cash"])
    assert reference["fills"].height > 0


def test_state_directory_can_be_copied(tmp_path: Path, reference: dict[str, pl.DataFrame]) -> None:
    """The state dir is self-contained: copying it mid-run and resuming the copy works."""
    original = tmp_path / "a"
    run(small_config(original), stop_after=900)
    shutil.copytree(original, tmp_path / "b")
    engine, _ = run(small_config(tmp_path / "b"))
    assert_same_tables(tables(engine), reference)


def test_a_kill_file_stops_the_interval_it_appears_in_from_trading(
    tmp_path: Path, reference: dict[str, pl.DataFrame]
) -> None:
    """Live-like (a decision per interval): a KILL file that appears just before the
    interval of the reference run's first fill prevents that fill and every later one."""
    config = small_config(tmp_path / "state")
    first_fill = int(reference["fills"]["ts"].min())
    engine = build_engine(config)
    engine.max_batch = 1

    def kill_before_first_fill(interval: Interval) -> None:
        if interval.ts + engine.step_ms == first_fill:
            (tmp_path / "state" / config.engine.kill_file).touch()

    engine.on_interval = kill_before_first_fill
    asyncio.run(engine.run())
    assert engine.trader.killed
    assert engine.ledger.frame("fills").height == 0
