"""Background retraining for the daemon: train candidates off the event loop, keep winners.

The engine, at refit time, takes a snapshot of its training history
(`snapshot_from_history`), the current models' states, and submits a `RetrainJob`;
`BackgroundRetrainer.submit` returns an asyncio future at once. The job runs in a worker
*process* (default; spawned, one torch thread, `nice` +10 so the daemon wins the CPU when
cores are short, its own CUDA context when a GPU is used) or a worker thread (its own
CUDA stream; its first job pays a one-off runtime initialisation that held the GIL for
up to ~0.4 s here), so the loop keeps deciding while a candidate trains.

`run_retrain` (the worker body) pools the snapshot's symbols in time order, holds out
the newest ``holdout`` resolved samples, trains fresh candidates on everything before
them minus the purge gap (``horizon + lookback + WARMUP`` candles), then scores candidate and
current model on the held-out samples (log loss, ties excluded, on the rows both
answer). A candidate replaces the current model only if it beats it by more than
``min_improvement`` (or the current one has no answer there). The result carries the
winners' states; the engine loads them with ``model.load_state_dict`` between two
decisions, and the fusion keeps learning across the swap. With a `Registration` the
worker also saves each winner to the model registry (torch.save, fsync, ``git
describe``: all off the event loop) with its data range, symbols, timeframe and
held-out log losses; `RetrainResult.versions` holds the versions written.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog
import torch

from titan.engine.history import TrainingHistory
from titan.evaluation.metrics import log_loss
from titan.models.base import BaseModel, FloatArray
from titan.models.dataset import IntArray, purge_gap
from titan.training.data import Samples, Series, pooled, samples
from titan.training.fitting import ModelSpec, fit_models, model_windows
from titan.training.registry import ModelRegistry

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Registration:
    """Where and how the worker registers the winners (`ModelRegistry`, off the loop)."""

    root: Path
    keep: int
    created_ms: int
    exchange: str = ""
    timeframe: str = ""


@dataclass(frozen=True)
class RetrainJob:
    names: tuple[str, ...]
    spec: ModelSpec
    series: tuple[Series, ...]
    current: Mapping[str, Mapping[str, Any] | None]
    step_ms: int
    holdout: int = 1440
    horizon: int = 1
    min_improvement: float = 0.0
    registration: Registration | None = None


@dataclass(frozen=True)
class Verdict:
    name: str
    replaced: bool
    candidate_log_loss: float
    current_log_loss: float
    n_holdout: int


@dataclass(frozen=True)
class RetrainResult:
    verdicts: dict[str, Verdict]
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # winners only
    train_samples: int = 0
    train_range: tuple[int, int] = (0, 0)
    holdout_range: tuple[int, int] = (0, 0)
    seconds: float = 0.0
    versions: dict[str, int] = field(default_factory=dict)  # winners registered


def snapshot_from_history(history: TrainingHistory) -> tuple[Series, ...]:
    """Copies of every symbol's rows, closes and times, oldest first (via its state)."""
    state = history.state_dict()
    out = []
    for symbol, ring in state["rings"].items():
        capacity, count = len(ring["close"]), int(ring["count"])
        size = min(count, capacity)
        order = (np.arange(count - size, count) % capacity).astype(np.int64)
        out.append(Series(symbol, ring["rows"][order], ring["close"][order], ring["ts"][order]))
    return tuple(out)


def split_holdout(data: Samples, job: RetrainJob, lookback: int) -> tuple[Samples, Samples]:
    """(training samples, the newest `holdout` resolved samples), purged in time: a
    training sample ends at least `purge_gap(horizon, lookback)` candles before the first
    held-out one, so no candle it reads is read by a held-out sample."""
    resolved = np.flatnonzero(np.isfinite(data.returns))
    held = resolved[-job.holdout :]
    if held.size == 0:
        return data.subset(slice(0, 0)), data.subset(slice(0, 0))
    newest = int(data.ts[held[0]]) - purge_gap(job.horizon, lookback) * job.step_ms
    train = np.flatnonzero((data.ts <= newest) & np.isfinite(data.returns))
    return data.subset(train), data.subset(held)


def run_retrain(job: RetrainJob) -> RetrainResult:
    """The worker body: train candidates, compare on the held-out window, keep winners."""
    start = time.perf_counter()
    lookback = max(job.spec.neural.lookback, job.spec.models.lightgbm.lookback)
    parts = [samples(s, lookback, job.horizon) for s in job.series if len(s.close) > lookback]
    if not parts:
        return RetrainResult({})
    train, held = split_holdout(pooled(parts), job, lookback)
    with _device_stream(job.spec):
        candidates, _ = fit_models(job.names, train, job.spec)
        verdicts = {n: _judge(n, candidates[n], job, held) for n in job.names}
    winners = {n: candidates[n] for n, v in verdicts.items() if v.replaced}
    result = RetrainResult(
        verdicts,
        {n: model.state_dict() for n, model in winners.items()},
        len(train),
        _range(train.ts),
        _range(held.ts),
        time.perf_counter() - start,
    )
    result.versions.update(register_winners(job, result, winners))
    return result


def retrain_meta(
    job: RetrainJob, reg: Registration, result: RetrainResult, name: str
) -> dict[str, Any]:
    """A winner's registry metadata: data range, symbols, timeframe, held-out metrics."""
    verdict = result.verdicts[name]
    data = {
        "exchange": reg.exchange,
        "symbols": [s.symbol for s in job.series],
        "timeframe": reg.timeframe,
        "train_start_ms": result.train_range[0],
        "train_end_ms": result.train_range[1],
        "holdout_start_ms": result.holdout_range[0],
        "holdout_end_ms": result.holdout_range[1],
        "train_samples": result.train_samples,
    }
    holdout = {
        "log_loss": _json_float(verdict.candidate_log_loss),
        "replaced_log_loss": _json_float(verdict.current_log_loss),  # None: it had no answer
        "n": verdict.n_holdout,
        "min_improvement": job.min_improvement,
    }
    return {
        "source": "daemon_retrain",
        "data": data,
        "metrics": {"holdout": holdout},
        "training": {"neural": job.spec.neural.model_dump(mode="json"), "horizon": job.horizon},
    }


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def register_winners(
    job: RetrainJob, result: RetrainResult, winners: Mapping[str, BaseModel]
) -> dict[str, int]:
    """Save the winners to the registry (in the worker); their new versions by name."""
    reg = job.registration
    if reg is None or not winners:
        return {}
    registry = ModelRegistry(reg.root, reg.keep)
    versions = {}
    for name, model in winners.items():
        try:
            saved = registry.save(model, retrain_meta(job, reg, result, name), reg.created_ms)
        except Exception as exc:  # a failed save must not lose the winner itself
            log.error("model_register_failed", model=name, error=f"{type(exc).__name__}: {exc}")
            continue
        versions[name] = saved.version
    return versions


def _range(ts: IntArray) -> tuple[int, int]:
    return (int(ts[0]), int(ts[-1])) if len(ts) else (0, 0)


def _judge(name: str, candidate: BaseModel, job: RetrainJob, held: Samples) -> Verdict:
    current = job.spec.build(name)
    state = job.current.get(name)
    if state is not None:
        with contextlib.suppress(ValueError, KeyError, RuntimeError):
            current.load_state_dict(state)
    p_new = _probabilities(candidate, held)
    p_old = _probabilities(current, held)
    both = np.isfinite(p_new) & np.isfinite(p_old)
    rows = both if both.any() else np.isfinite(p_new)
    new = log_loss(p_new[rows], held.labels[rows]) if rows.any() else float("nan")
    old = log_loss(p_old[rows], held.labels[rows]) if both.any() else float("nan")
    replaced = bool(np.isfinite(new) and (not np.isfinite(old) or new < old - job.min_improvement))
    return Verdict(name, replaced, new, old, int(np.isfinite(held.labels[rows]).sum()))


def _probabilities(model: BaseModel, held: Samples) -> FloatArray:
    if len(held) == 0:
        return np.empty(0)
    return model.predict(model_windows(model, held.windows)).prob_up


@contextlib.contextmanager
def _device_stream(spec: ModelSpec) -> Iterator[None]:
    """A dedicated CUDA stream when training on a GPU (no-op on the CPU)."""
    if spec.neural.trainer.device != "cpu" and torch.cuda.is_available():
        with torch.cuda.stream(torch.cuda.Stream()):  # type: ignore[no-untyped-call]
            yield
    else:
        yield


def _init_worker(threads: int, nice: int) -> None:
    """Worker process set-up: its torch threads, and a lower CPU priority than the daemon."""
    torch.set_num_threads(threads)
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)


Worker = Callable[[RetrainJob], RetrainResult]


class BackgroundRetrainer:
    """One retrain at a time, off the event loop; asyncio-friendly."""

    def __init__(
        self,
        executor: Literal["process", "thread"] = "process",
        worker: Worker = run_retrain,
        threads: int = 1,
        nice: int = 10,
    ) -> None:
        self.kind, self.worker, self.threads, self.nice = executor, worker, threads, nice
        self._pool: Executor | None = None
        self._future: asyncio.Future[RetrainResult] | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.kind == "process":
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self.threads, self.nice),
                )
            else:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="titan-retrain")
        return self._pool

    @property
    def busy(self) -> bool:
        return self._future is not None and not self._future.done()

    def submit(self, job: RetrainJob) -> asyncio.Future[RetrainResult]:
        """Start `job` in the worker (from inside the running loop); returns at once."""
        if self.busy:
            raise RuntimeError("a retrain is already running")
        loop = asyncio.get_running_loop()
        self._future = loop.run_in_executor(self._executor(), self.worker, job)
        return self._future

    def poll(self) -> RetrainResult | None:
        """The finished job's result (once), None while running or idle; re-raises failures."""
        if self._future is None or not self._future.done():
            return None
        future, self._future = self._future, None
        return future.result()

    async def wait(self) -> RetrainResult | None:
        """Await the running job (None when idle)."""
        if self._future is None:
            return None
        future, self._future = self._future, None
        return await future

    def close(self) -> None:
        """Stop the worker (a running job is abandoned; its future is cancelled)."""
        if self._future is not None:
            self._future.cancel()
            self._future = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def apply_winners(models: Sequence[BaseModel], result: RetrainResult) -> list[str]:
    """Load the winners' states into the engine's models; returns the names swapped."""
    swapped = []
    for model in models:
        state = result.states.get(model.name)
        if state is not None:
            model.load_state_dict(state)
            swapped.append(model.name)
    return swapped
