"""Engine benchmarks: decision latency (1 and 20 symbols), replay throughput, memory.

Run: `.venv/bin/python -m benchmarks.bench_engine` (needs ../shared/data). One torch /
LightGBM thread. Writes the "engine" section of BENCHMARKS.md.

- Latency: live-like (`max_batch = 1`, a decision per interval), the time from handing a
  closed interval to the engine until its decisions, fills and outcomes are committed to
  the ledger, after a warm-up in which every model has been fitted.
- Throughput: a backtest replay of the 130,708-candle BTC 1m set with the four base
  models (weekly walk-forward refits) and the fusion learning online, end to end
  (feed, features, inference, training, trading, ledger, checkpoints; no report).
- Memory: peak RSS, and RSS sampled along the replay (flat = bounded buffers).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from benchmarks.report import machine_line, write_section
from titan.config import BACKTEST_CONFIG_PATH, TitanConfig, load_config
from titan.data.store import CandleStore, SeriesId
from titan.engine.compose import build_engine
from titan.engine.engine import Engine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BACKTEST_CONFIG = BACKTEST_CONFIG_PATH
BTC = SeriesId("binance", "BTC/USDT", "1m")
FUTURES = (
    "BTC",
    "ETH",
    "SOL",
    "XRP",
    "ADA",
    "AVAX",
    "BCH",
    "BNB",
    "ENA",
    "ETC",
    "LINK",
    "LTC",
    "SUI",
    "XLM",
    "XMR",
    "LAYER",
)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def config(state: Path, path: Path | None = None, **overrides: str) -> TitanConfig:
    base = {
        "mode": "backtest",
        "runtime.state_dir": str(state),
        "logging.level": "warning",
        "engine.report": "false",
    }
    return load_config(path, overrides={**base, **overrides}, env={})


def run(engine: Engine, on_interval: Callable[[Any], None] | None = None) -> float:
    engine.on_interval = on_interval
    started = time.perf_counter()
    asyncio.run(engine.run())
    return time.perf_counter() - started


# Engine methods timed in the throughput run: (label, method, is a coroutine). The first
# five run in `process`; the rest inside `flush` (the batched barrier).
STAGES = (
    ("features (rows precomputed by the replay) and training history", "_ingest", False),
    ("walk-forward refits of the base models (`_refit`)", "_refit", True),
    ("queueing decisions: windows, pending entries", "_queue_decision", False),
    ("checkpoints", "checkpoint", False),
    ("stored fusion statistics", "_store_stats", False),
    ("base-model inference (`Ensemble.infer`, run ahead until each refit)", "infer", False),
    ("fusion forward (batched)", "forward_batch", False),
    ("trading: sizing, risk, fills, equity rows (`_act`)", "_act", True),
    ("ledger writes (`_write`)", "_write", False),
    ("fusion learning: buffer, training steps, validation (`_learn`)", "_learn", False),
)


class StageTimer:
    """Wall time spent in named engine methods, by wrapping them on their instances."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys((label for label, _, _ in STAGES), 0.0)

    def attach(self, engine: Engine) -> None:
        owners: dict[str, object] = {
            "infer": engine.ensemble,
            "forward_batch": engine.ensemble.fusion,
        }
        for label, name, is_async in STAGES:
            owner = owners.get(name, engine)
            method = getattr(owner, name)
            wrapped = self._async(label, method) if is_async else self._sync(label, method)
            setattr(owner, name, wrapped)

    def _sync(self, label: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        return timed

    def _async(self, label: str, method: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        return timed


def throughput(state: Path, stages: StageTimer | None = None, **overrides: str) -> dict[str, Any]:
    replay = {"data.store": str(SHARED), "data.exchange": "binance", "data.symbols": '["BTC/USDT"]'}
    settings = config(state, BACKTEST_CONFIG, **replay, **overrides)
    engine = build_engine(settings)
    if stages is not None:
        stages.attach(engine)
    samples: list[float] = []

    def sample(_interval: Any) -> None:
        if engine.summary.intervals % 5000 == 0:
            samples.append(rss_mb())

    seconds = run(engine, sample)
    n = engine.summary.intervals
    return {
        "intervals": n,
        "seconds": seconds,
        "per_s": n / seconds,
        "rss_first": samples[1],
        "rss_last": samples[-1],
        "rss_peak": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def twenty_symbol_store(root: Path) -> list[str]:
    """The 16 shared USDT-M 1m series plus 4 renamed copies (distinct symbols, real data)."""
    source = CandleStore(SHARED)
    target = CandleStore(root)
    symbols = []
    for i, base in enumerate((*FUTURES, "BTC", "ETH", "SOL", "XRP")):
        frame = source.read(SeriesId("binanceusdm", f"{base}/USDT", "1m"))
        name = f"{base}{'X' if i >= len(FUTURES) else ''}/USDT"
        target.append(SeriesId("binanceusdm", name, "1m"), frame)
        symbols.append(name)
    return symbols


def latency(
    state: Path, store: Path, symbols: list[str], warm: int, measured: int
) -> dict[str, float]:
    quoted = "[" + ", ".join(f'"{s}"' for s in symbols) + "]"
    settings = config(
        state,
        **{
            "data.store": str(store),
            "data.exchange": "binanceusdm",
            "data.symbols": quoted,
            "feed.start": "2025-05-05T00:00:00",
            "feed.precompute_features": "false",  # live-like: features streamed
            "models.refit_every": str(warm - 1),
            "models.train_window": str(warm - 100),
            "models.min_train": "1000",
        },
    )
    engine = build_engine(settings)
    engine.max_batch = 1
    times: list[float] = []

    async def main() -> None:
        engine.restore()
        count = 0
        async for interval in engine.parts.feed(None):
            await engine.process(interval)
            if count >= warm:
                times.append(engine.decision_latency_s)
            count += 1
            if count >= warm + measured:
                break

    asyncio.run(main())
    values = np.array(times) * 1e3
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
        "n": len(values),
    }


REPEATS = 3  # throughput runs; the median is reported

# The same replay with one setting changed (same data, same engine), for scale.
VARIANTS = (
    ("fusion trains one mini-batch per 32 outcomes", {"fusion.train_every": "32"}),
    ("fusion trains one mini-batch per 128 outcomes", {"fusion.train_every": "128"}),
    ("fusion disabled (simple average, no training)", {"fusion.enabled": "false"}),
    ("features streamed candle by candle (as live)", {"feed.precompute_features": "false"}),
)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    scratch = Path(tempfile.mkdtemp(prefix="titan-bench-"))
    try:
        store = scratch / "store20"
        symbols = twenty_symbol_store(store)
        one = latency(scratch / "lat1", store, symbols[:1], warm=3000, measured=3000)
        twenty = latency(scratch / "lat20", store, symbols, warm=3000, measured=1500)
        runs = sorted(
            (throughput(scratch / f"replay{i}") for i in range(REPEATS)), key=lambda r: r["per_s"]
        )
        stages = StageTimer()
        timed = throughput(scratch / "timed", stages)
        variants = [
            (label, throughput(scratch / f"variant{i}", None, **overrides)["per_s"])
            for i, (label, overrides) in enumerate(VARIANTS)
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    body = render(one, twenty, runs, (timed, stages), variants)
    print(body)
    write_section("engine", body)


def _ms(stats: dict[str, float]) -> str:
    return f"{stats['p50']:.2f} / {stats['p99']:.2f} / {stats['max']:.1f} ms"


def render(
    one: dict[str, float],
    twenty: dict[str, float],
    runs: list[dict[str, Any]],
    timed: tuple[dict[str, Any], StageTimer],
    variants: list[tuple[str, float]],
) -> str:
    replay = runs[len(runs) // 2]  # the median run
    rate, seconds, n = replay["per_s"], replay["seconds"], replay["intervals"]
    spread = f"{runs[0]['per_s']:,.0f}-{runs[-1]['per_s']:,.0f}"
    rss = f"{replay['rss_first']:.0f} / {replay['rss_last']:.0f} / {replay['rss_peak']:.0f} MB"
    command = "`.venv/bin/python -m benchmarks.bench_engine`"
    lines = [
        "## Engine",
        "",
        f"{command}: one thread; latency with the default config, throughput with "
        f"`config/backtest.toml`. {machine_line()}",
        "",
        "| measurement | result | target |",
        "|---|---:|---:|",
        f"| decision latency, 1 symbol, p50 / p99 / max | {_ms(one)} | |",
        f"| decision latency, 20 symbols, p50 / p99 / max | {_ms(twenty)} | p99 <= 10 ms |",
        f"| replay throughput, BTC 1m, {n:.0f} candles, median of {len(runs)} runs "
        f"({spread}) | {rate:,.0f} candles/s ({seconds:.1f} s) | >= 13,000 |",
        f"| RSS after 5k candles / at the end / peak | {rss} | flat, < 1 GB |",
        "",
        "Latency is measured live-like (`max_batch = 1`) from handing a closed interval to "
        "the engine (features, inference, trading) to its decisions, fills and outcomes "
        "committed to the ledger, after 3000 warm-up intervals (every model fitted). The "
        "fusion trains on the outcomes after that commit, before the next interval; weekly "
        "walk-forward refits are excluded; the max includes a checkpoint write. The 20 "
        "symbols are the 16 Binance USDT-M 1m series of ../shared/data plus 4 renamed copies.",
        "",
        "The replay computes its feature rows in one batch pass and runs the frozen base "
        "models ahead over them until each refit; tests/integration/test_engine.py proves "
        "both write the ledger of the live-like path (features streamed, a decision per "
        "interval). The fusion trains one mini-batch of 32 per 256 outcomes "
        "(`fusion.train_every`), live and replay alike.",
        "",
        f"Where the replay's time goes (one more run with timers, {timed[0]['seconds']:.1f} s):",
        "",
        "| stage | µs/candle | share |",
        "|---|---:|---:|",
    ]
    timed_seconds, stages = timed[0]["seconds"], timed[1]
    for label, spent in stages.seconds.items():
        lines.append(f"| {label} | {spent / n * 1e6:.1f} | {spent / timed_seconds:.0%} |")
    rest = timed_seconds - sum(stages.seconds.values())
    lines.append(
        f"| the rest: feed, decisions from the outputs, outcome resolution, barriers "
        f"| {rest / n * 1e6:.1f} | {rest / timed_seconds:.0%} |"
    )
    lines += ["", "The same replay with one setting changed:", ""]
    lines += ["| setting | candles/s |", "|---|---:|"]
    lines += [f"| {label} | {per_s:,.0f} |" for label, per_s in variants]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
