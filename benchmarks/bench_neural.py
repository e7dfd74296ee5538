"""Neural base models: inference latency (1 and 64 symbols), training time per epoch, and
decision latency while a background retrain runs.

Run: `.venv/bin/python -m benchmarks.bench_neural [--quick] [--md PATH]` (one torch thread,
CPU). Writes the `neural` section of BENCHMARKS.md (or PATH). Latencies are per `predict`
call through the engine-facing adapter (float64 windows in, calibrated probabilities
out; eval mode, `torch.inference_mode`, all symbols in one batch); each figure is the mean
over `n` calls, repeated: the median and the best repeat (the least disturbed by other
processes on these shared 2-core machines) are given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import structlog
import torch

from benchmarks.report import BENCHMARKS_MD, machine_line, write_section
from tests.unit.models.contract import sample_table
from titan.config.training import NeuralConfig, TrainerConfig
from titan.features import FEATURE_NAMES
from titan.models.dataset import supervised
from titan.models.neural.fitting import loss_fn, output_of
from titan.models.neural.model import NeuralModel
from titan.models.neural.registry import build_neural
from titan.training.background import BackgroundRetrainer, RetrainJob
from titan.training.data import Series
from titan.training.fitting import ModelSpec

NAMES = ("lstm", "cnn", "attention", "neural_ensemble", "multiscale_cnn")
TARGETS = {("neural_ensemble", 1): "<= 5 ms", ("neural_ensemble", 64): "<= 60 ms"}
EPOCH_SAMPLES = 14 * 1440 * 8 // 10  # a 14-day 1m window less its 20 % validation tail


def _windows(n: int) -> np.ndarray:
    table, close = sample_table()
    return np.array(supervised(table, close, 30).windows[-n:])


def _fitted(name: str) -> NeuralModel:
    """A model fitted with a token budget (weights do not matter for timing)."""
    config = NeuralConfig(trainer=TrainerConfig(max_steps=3, eval_every=3), min_samples=100)
    model = build_neural(name, config)
    table, close = sample_table()
    data = supervised(table, close, 30)
    model.fit(np.array(data.windows[:600]), data.labels[:600])
    assert model.is_fitted
    return model


def _time(fn: Callable[[], object], n: int, repeats: int) -> tuple[float, float]:
    for _ in range(max(2, n // 10)):
        fn()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n * 1e3)
    return statistics.median(rounds), min(rounds)


def inference_rows(quick: bool) -> list[str]:
    n, repeats = (10, 3) if quick else (40, 5)
    windows = _windows(64)
    models = {name: _fitted(name) for name in NAMES}
    rows = []
    for name, model in models.items():
        for batch in (1, 64):
            median, best = _time(lambda m=model, b=batch: m.predict(windows[:b]), n, repeats)
            target = TARGETS.get((name, batch), "")
            rows.append(
                f"| {name} | {model.parameter_count():,} | {batch} | {median:.2f} | {best:.2f} "
                f"| {target} |"
            )
    engine_set = [models[n] for n in ("lstm", "cnn", "attention", "neural_ensemble")]
    for batch in (1, 64):
        median, best = _time(
            lambda b=batch: [m.predict(windows[:b]) for m in engine_set], n, repeats
        )
        rows.append(
            f"| all four adapters as the engine runs them (bases twice) | - | {batch} "
            f"| {median:.2f} | {best:.2f} | |"
        )
    return rows


def training_rows(quick: bool) -> list[str]:
    """ms per optimiser step (batch 64: forward, loss, backward, clip, AdamW) -> s/epoch."""
    steps = 3 if quick else 10
    x = torch.from_numpy(_windows(64).astype(np.float32))
    y = torch.randn(64)
    rows = []
    for name in ("lstm", "cnn", "attention", "multiscale_cnn"):
        net = build_neural(name).network
        net.train()
        optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def step(net: torch.nn.Module = net, optimiser: torch.optim.Optimizer = optimiser) -> None:
            loss = loss_fn("huber", output_of(net, x), y)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()

        median, best = _time(step, steps, 3)
        epoch = EPOCH_SAMPLES / 64 * best / 1e3
        rows.append(f"| {name} | {median:.0f} | {best:.0f} | {epoch:.0f} |")
    return rows


async def _latencies(model: NeuralModel, windows: np.ndarray, seconds: float) -> list[float]:
    out = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        model.predict(windows)
        out.append((time.perf_counter() - start) * 1e3)
        await asyncio.sleep(0.01)
    return out


async def retrain_rows(quick: bool) -> list[str]:
    """Ensemble decision latency (1 symbol) idle vs while a worker process retrains."""
    seconds = 3.0 if quick else 10.0
    model, windows = _fitted("neural_ensemble"), _windows(1)
    table, close = sample_table()
    series = Series("BTC/USDT", table[-8000:], close[-8000:], np.arange(8000) * 60_000)
    trainer = TrainerConfig(max_steps=10_000, max_epochs=1000, eval_every=500)
    job = RetrainJob(("lstm",), ModelSpec(NeuralConfig(trainer=trainer)), (series,), {}, 60_000)
    idle = await _latencies(model, windows, seconds)
    retrainer = BackgroundRetrainer("process")
    retrainer.submit(job)
    await asyncio.sleep(5.0)  # worker started and training
    busy = await _latencies(model, windows, seconds)
    # The figure means something only if the worker trained throughout the measurement.
    assert retrainer.busy, "the retrain ended before the measurement"
    retrainer.close()
    return [
        f"| {label} | {len(v)} | {np.median(v):.2f} | {np.percentile(v, 99):.2f} |"
        for label, v in (("idle", idle), ("while a retrain runs (worker process)", busy))
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--md", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args()
    torch.set_num_threads(1)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    assert len(FEATURE_NAMES) == 40
    body = [
        "## Neural base models (LSTM, CNN, attention, ensemble)",
        "",
        "`.venv/bin/python -m benchmarks.bench_neural` (one torch thread, CPU).",
        machine_line(),
        "",
        "Inference through `predict` (windows 30 x 40 in, calibrated prob_up out), ms per call:",
        "",
        "| model | parameters | symbols | median ms | best ms | target (1 core) |",
        "|---|---:|---:|---:|---:|---|",
        *inference_rows(args.quick),
        "",
        f"Training (batch 64: forward, loss, backward, clipping, AdamW); an epoch ="
        f" {EPOCH_SAMPLES:,} samples"
        " (a 14-day 1m window less its validation tail):",
        "",
        "| network | median ms/step | best ms/step | s/epoch (best) |",
        "|---|---:|---:|---:|",
        *training_rows(args.quick),
        "",
        "Decision latency of the neural ensemble (1 symbol) while the daemon's background"
        " retrainer trains an LSTM in its worker process:",
        "",
        "| situation | calls | median ms | p99 ms |",
        "|---|---:|---:|---:|",
        *asyncio.run(retrain_rows(args.quick)),
    ]
    write_section("neural", "\n".join(body), args.md)
    print("\n".join(body))


if __name__ == "__main__":
    main()
