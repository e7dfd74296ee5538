"""Background retraining: candidates replace models only when they win on the newest
held-out window, and the asyncio loop keeps running while a retrain trains."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pytest

from tests.unit.models.neural.fixtures import STEP_MS, TINY, bundled
from titan.config.training import TrainerConfig
from titan.engine.history import TrainingHistory
from titan.features import WARMUP
from titan.training.background import (
    BackgroundRetrainer,
    RetrainJob,
    RetrainResult,
    apply_winners,
    run_retrain,
    snapshot_from_history,
    split_holdout,
)
from titan.training.data import pooled, samples
from titan.training.fitting import ModelSpec, model_windows

SPEC = ModelSpec(TINY)


def _job(
    names: Sequence[str], current: dict[str, object] | None = None, **kw: object
) -> RetrainJob:
    series = (bundled("BTC/USDT", 3000), bundled("ETH/USDT", 3000))
    return RetrainJob(tuple(names), SPEC, series, current or {}, STEP_MS, holdout=400, **kw)  # type: ignore[arg-type]


def test_snapshot_from_history_keeps_each_symbols_newest_rows_in_order() -> None:
    history = TrainingHistory(capacity=10, width=2)
    for t in range(15):
        history.push("A", t * STEP_MS, np.array([t, -t], dtype=float), 100.0 + t)
        if t % 2 == 0:
            history.push("B", t * STEP_MS, np.array([t, t], dtype=float), 50.0 + t)
    a, b = snapshot_from_history(history)
    assert a.symbol == "A" and a.ts.tolist() == [t * STEP_MS for t in range(5, 15)]
    assert a.close.tolist() == [100.0 + t for t in range(5, 15)] and a.table[0].tolist() == [5, -5]
    assert b.symbol == "B" and len(b.close) == 8


def test_holdout_is_the_newest_resolved_samples_and_training_is_purged_before_it() -> None:
    job = _job(["cnn"])
    data = pooled([samples(s, 30) for s in job.series])
    train, held = split_holdout(data, job, lookback=30)
    assert len(held) == 400 and held.ts[-1] == data.ts[np.isfinite(data.returns)][-1]
    first_candle = held.ts[0] - (29 + WARMUP) * STEP_MS  # read by the first held-out sample
    assert (train.ts + STEP_MS < first_candle).all() and np.isfinite(train.returns).all()
    assert held.ts[0] - train.ts.max() == (1 + 30 + WARMUP) * STEP_MS


def test_a_candidate_replaces_an_unfitted_model_and_not_an_equal_one() -> None:
    first = run_retrain(_job(["cnn", "trend_vic"]))
    assert all(v.replaced for v in first.verdicts.values()) and set(first.states) == {
        "cnn",
        "trend_vic",
    }
    assert np.isnan(first.verdicts["cnn"].current_log_loss)
    assert first.holdout_range[0] > first.train_range[1]
    again = run_retrain(_job(["cnn", "trend_vic"], current=dict(first.states)))
    for verdict in again.verdicts.values():  # same data, same seed: the same model, no swap
        assert verdict.candidate_log_loss == verdict.current_log_loss
        assert not verdict.replaced
    assert again.states == {}
    models = [SPEC.build("trend_vic"), SPEC.build("cnn")]
    assert apply_winners(models, first) == ["trend_vic", "cnn"]
    for model in models:
        assert np.isfinite(model.predict(model_windows(model, first_windows())).prob_up).all()


def first_windows() -> np.ndarray:
    return np.asarray(samples(bundled("BTC/USDT", 3000), 30).windows[-5:])


def test_a_better_current_model_is_kept() -> None:
    """A candidate must beat the current model by `min_improvement`; 1.0 is unbeatable."""
    first = run_retrain(_job(["cnn"]))
    kept = run_retrain(_job(["cnn"], current=dict(first.states), min_improvement=1.0))
    assert not kept.verdicts["cnn"].replaced and kept.states == {}


def _slow_job() -> RetrainJob:
    trainer = TrainerConfig(max_steps=200, eval_every=100, batch_size=64)
    spec = ModelSpec(TINY.model_copy(update={"trainer": trainer}))
    return RetrainJob(("cnn", "lstm"), spec, (bundled("BTC/USDT", 4000),), {}, STEP_MS, holdout=400)


async def _ticks_during(retrainer: BackgroundRetrainer, job: RetrainJob) -> tuple[float, float]:
    """(longest gap between 5 ms ticks, retrain seconds) while `job` runs."""
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    future = retrainer.submit(job)
    assert retrainer.busy and retrainer.poll() is None
    with pytest.raises(RuntimeError, match="already running"):
        retrainer.submit(job)
    result = await retrainer.wait()
    seconds = time.perf_counter() - start
    task.cancel()
    assert future.done() and isinstance(result, RetrainResult) and result.verdicts
    return max(gaps), seconds


@pytest.mark.parametrize("kind", ["process", "thread"])
async def test_the_event_loop_keeps_ticking_while_a_retrain_runs(
    kind: Literal["process", "thread"],
) -> None:
    """A blocked loop would show one gap as long as the retrain (seconds)."""
    retrainer = BackgroundRetrainer(kind)
    try:
        if kind == "thread":  # the first job pays a one-off runtime initialisation stall
            await retrainer.submit(_slow_job())
        gap, seconds = await _ticks_during(retrainer, _slow_job())
    finally:
        retrainer.close()
    assert seconds > 1.0
    assert gap < 0.25, f"loop stalled {gap * 1e3:.0f} ms during a {seconds:.1f} s retrain"


async def test_poll_returns_a_finished_result_once() -> None:
    retrainer = BackgroundRetrainer("thread", worker=_instant)
    try:
        future = retrainer.submit(_job(["cnn"]))
        await asyncio.wrap_future(asyncio.ensure_future(future))  # type: ignore[arg-type]
        result = retrainer.poll()
        assert result is not None and result.train_samples == 7
        assert retrainer.poll() is None and not retrainer.busy
        assert await retrainer.wait() is None
    finally:
        retrainer.close()


def _instant(job: RetrainJob) -> RetrainResult:
    return RetrainResult({}, train_samples=7)
