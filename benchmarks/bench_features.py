"""Feature layer benchmark: streaming µs per candle (1 and 100 symbols), batch seconds.

Run: ``.venv/bin/python -m benchmarks.bench_features`` (one thread everywhere). Uses the
real 130k-candle BTC 1m series from ../shared/data when present, else the bundled
sample, and writes the "features" section of BENCHMARKS.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import gc  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from benchmarks.report import machine_line, write_section  # noqa: E402
from titan.config.features import FeaturesConfig  # noqa: E402
from titan.features import FeatureBuffers, compute_features, normalise, raw_indicators  # noqa: E402
from titan.features.spec import FLOOR, NUM_FEATURES, WARMUP  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TITAN_SHARED_DATA", REPO.parent / "shared" / "data"))
REAL = SHARED / "binance_BTCUSDT_1m.parquet"
SAMPLE = REPO / "backtests" / "data" / "binanceusdm_BTCUSDT_1m.parquet"
COMMAND = ".venv/bin/python -m benchmarks.bench_features"
STREAM_TARGET_US, BATCH_TARGET_S = 100.0, 2.0
SYMBOLS, STEPS_PER_SYMBOL = 100, 2000

Candles = list[np.ndarray]


def _limit_torch_threads() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


def load() -> tuple[str, Candles]:
    path = REAL if REAL.is_file() else SAMPLE
    frame = pl.read_parquet(path)
    columns = [frame.get_column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")]
    return path.name, columns


def bench_batch(candles: Candles, repeats: int = 3) -> tuple[float, float, np.ndarray]:
    """Best-of wall seconds of compute_features, and of its raw-indicator part."""
    total, raw_only, table = [], [], np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        raw = raw_indicators(*candles)
        middle = time.perf_counter()
        with np.errstate(all="ignore"):
            normalise(raw, *candles)
        total.append(time.perf_counter() - start)
        raw_only.append(middle - start)
    table = compute_features(*candles)
    return min(total), min(raw_only), table


def bench_one_symbol(candles: Candles) -> tuple[float, np.ndarray]:
    """µs per FeatureBuffers.update over the whole series; the rows it produced."""
    buffers = FeatureBuffers(FeaturesConfig())
    rows = [c.tolist() for c in candles]
    out = np.empty((len(rows[0]), NUM_FEATURES))
    start = time.perf_counter()
    for i, candle in enumerate(zip(*rows, strict=True)):
        out[i] = buffers.update("BTC/USDT", *candle)
    elapsed = time.perf_counter() - start
    return elapsed / len(rows[0]) * 1e6, out


def bench_many_symbols(candles: Candles) -> tuple[float, float, float]:
    """Round-robin over SYMBOLS symbols (offset slices of the series, scaled prices):
    mean µs per update, and p50 / p99 of individually timed updates."""
    n = len(candles[0])
    buffers = FeatureBuffers(FeaturesConfig())
    feeds = []
    for s in range(SYMBOLS):
        offset = (s * 997) % max(1, n - STEPS_PER_SYMBOL)
        scale = 10.0 ** ((s % 9) - 4)
        sliced = [c[offset : offset + STEPS_PER_SYMBOL] for c in candles]
        prices = [(x * scale).tolist() for x in sliced[:4]]
        feeds.append((f"SYM{s:03d}", list(zip(*prices, sliced[4].tolist(), strict=True))))
    laps = np.empty(SYMBOLS * STEPS_PER_SYMBOL)
    clock, k = time.perf_counter_ns, 0
    start = time.perf_counter()
    for t in range(STEPS_PER_SYMBOL):
        for symbol, feed in feeds:
            tick = clock()
            buffers.update(symbol, *feed[t])
            laps[k] = clock() - tick
            k += 1
    mean = (time.perf_counter() - start) / k * 1e6
    return mean, float(np.percentile(laps, 50)) / 1e3, float(np.percentile(laps, 99)) / 1e3


def max_relative_gap(stream: np.ndarray, batch: np.ndarray) -> float:
    s, b = stream[WARMUP:], batch[WARMUP:]
    return float(np.max(np.abs(s - b) / np.maximum(np.abs(b), FLOOR)))


def _verdict(value: float, target: float) -> str:
    return "yes" if value <= target else "**no**"


def report(source: str, n: int, figures: dict[str, float]) -> str:
    one, many, p50, p99 = (figures[k] for k in ("one", "many", "p50", "p99"))
    batch, raw, gap = figures["batch"], figures["raw"], figures["gap"]
    return "\n".join(
        [
            "## Features (`titan.features`)",
            "",
            f"Command: `{COMMAND}` (1 thread). Data: `{source}`, {n:,} 1m candles.",
            machine_line(),
            "",
            "| measurement | figure | target | met |",
            "|---|---:|---:|---|",
            f"| streaming, 1 symbol (`FeatureBuffers.update`, whole series) | {one:.1f} µs/candle "
            f"| <= {STREAM_TARGET_US:.0f} µs | {_verdict(one, STREAM_TARGET_US)} |",
            f"| streaming, {SYMBOLS} symbols round-robin ({STEPS_PER_SYMBOL} candles each) "
            f"| {many:.1f} µs/candle | <= {STREAM_TARGET_US:.0f} µs "
            f"| {_verdict(many, STREAM_TARGET_US)} |",
            f"| same, per-update latency p50 / p99 (timed one by one) | {p50:.1f} / {p99:.1f} µs "
            "| | |",
            f"| batch features + normalisation, {n:,} candles | {batch:.3f} s "
            f"| <= {BATCH_TARGET_S:.0f} s | {_verdict(batch, BATCH_TARGET_S)} |",
            f"| of which raw indicators (TA-Lib + own kernels) | {raw:.3f} s | | |",
            f"| streaming vs batch, max abs(s-b)/max(abs(b), {FLOOR:g}) after warm-up "
            f"| {gap:.1e} | <= 1e-9 | {_verdict(gap, 1e-9)} |",
        ]
    )


def main() -> None:
    _limit_torch_threads()
    source, candles = load()
    gc.collect()
    batch, raw, table = bench_batch(candles)
    one, rows = bench_one_symbol(candles)
    many, p50, p99 = bench_many_symbols(candles)
    figures = {"one": one, "many": many, "p50": p50, "p99": p99, "batch": batch, "raw": raw}
    figures["gap"] = max_relative_gap(rows, table)
    body = report(source, len(candles[0]), figures)
    write_section("features", body)
    print(body)


if __name__ == "__main__":
    main()
