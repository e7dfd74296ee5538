"""TransformerFusion latency and memory, against the design document's figures.

Run: `.venv/bin/python -m benchmarks.bench_fusion` (one torch thread, CPU). Writes the
`fusion` section of BENCHMARKS.md. Each timing is the mean per call over `n` calls,
repeated; the table gives the median and the best repeat (the best is the least disturbed
by other processes on these shared 2-core machines).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
import torch

from benchmarks.report import machine_line, write_section
from titan.config.fusion import FusionConfig
from titan.fusion import TransformerFusion
from titan.fusion.fusion import _pad
from titan.fusion.inputs import prior_logits
from titan.models.base import ModelOutput

N_MODELS = 4
CONTEXT = ("close_z", "rsi", "volatility")
NEVER = 10**9


@dataclass(frozen=True)
class Timing:
    name: str
    median_us: float
    best_us: float
    design: str
    target: str


def _stream(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    up = rng.random(n) < 0.5
    prob = rng.uniform(0.05, 0.95, (n, N_MODELS))
    prob[:, 0] = 1 / (1 + np.exp(-(0.8 * (2 * up - 1) + rng.normal(0, 1, n))))
    confidence = rng.uniform(0, 1, (n, N_MODELS))
    context = np.column_stack([rng.normal(0, 1, n), rng.uniform(0, 100, n), rng.gamma(2, 0.01, n)])
    return prob, confidence, context, ["UP" if u else "DOWN" for u in up]


def _fusion(**overrides: object) -> TransformerFusion:
    config = FusionConfig.model_validate({"device": "cpu", **overrides})
    return TransformerFusion(config, N_MODELS, context_features=CONTEXT)


def _filled(n: int, **overrides: object) -> TransformerFusion:
    """A fusion past min_samples with a full buffer (trained a little, then frozen)."""
    prob, conf, ctx, dirs = _stream(n)
    fusion = _fusion(**{"train_every": 4, **overrides})
    fusion.update_batch(prob, conf, dirs, context=ctx)
    return fusion


def _time(fn: Callable[[], object], n: int, repeats: int) -> tuple[float, float]:
    for _ in range(max(10, n // 10)):
        fn()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(rounds), min(rounds)


def forward_timings(quick: bool) -> list[Timing]:
    n, repeats = (300, 3) if quick else (2000, 7)
    fusion = _filled(6000)
    prob, conf, ctx, _ = _stream(1064, seed=1)
    outputs = [ModelOutput(float(p), float(c)) for p, c in zip(prob[0], conf[0], strict=True)]
    features = dict(zip(CONTEXT, map(float, ctx[0]), strict=True))
    disabled = _fusion(enabled=False)
    cases = [
        (
            "forward, 1 symbol (`forward`, list of ModelOutput)",
            lambda: fusion.forward(outputs, features),
            n,
            "0.5–1 ms",
            "<= 0.5 ms",
        ),
        (
            "forward, 1 symbol (`forward_batch`)",
            lambda: fusion.forward_batch(prob[:1], conf[:1], None, ctx[:1]),
            n,
            "",
            "<= 0.5 ms",
        ),
        (
            "forward, 64 symbols batched",
            lambda: fusion.forward_batch(prob[:64], conf[:64], None, ctx[:64]),
            n,
            "",
            "<= 1 ms",
        ),
        (
            "forward, 1000 timesteps batched",
            lambda: fusion.forward_batch(prob[64:], conf[64:], None, ctx[64:]),
            max(20, n // 20),
            "",
            "",
        ),
        (
            "simple average (fusion disabled), 1 symbol",
            lambda: disabled.forward(outputs, features),
            n,
            "~1/10 of forward",
            "",
        ),
    ]
    return [
        Timing(name, *_time(fn, calls, repeats), design, target)
        for name, fn, calls, design, target in cases
    ]


def training_timings(quick: bool) -> list[Timing]:
    n, repeats = (100, 3) if quick else (500, 5)
    frozen = _filled(6000, val_every=NEVER)
    trainer = frozen.trainer
    step = _time(lambda: trainer.step(frozen.samples_seen), n, repeats)
    validate = _time(trainer.validation_loss, max(20, n // 5), repeats)
    live = _filled(6000, train_every=1, early_stopping_patience=NEVER)  # never paused
    prob, conf, ctx, dirs = _stream(20_000, seed=2)
    counter = iter(range(20_000))

    def one_update() -> None:
        i = next(counter)
        live.update_batch(prob[i : i + 1], conf[i : i + 1], dirs[i : i + 1], context=ctx[i : i + 1])

    update = _time(one_update, n * 2 if quick else 1500, 3)
    every = live.config.val_every
    return [
        Timing(
            "training step, batch 32 (sample, fwd, bwd, clip, AdamW)", *step, "5–10 ms", "<= 2 ms"
        ),
        Timing(f"validation pass ({frozen.buffer.n_val} newest samples)", *validate, "", ""),
        Timing(
            f"`update`, amortised (train_every=1: a step per sample, val_every={every})",
            *update,
            "",
            "<= 2 ms",
        ),
    ]


def forward_breakdown(quick: bool) -> list[tuple[str, float]]:
    """Where one `forward` (1 symbol) spends its time: best-repeat µs per part."""
    n, repeats = (300, 3) if quick else (2000, 5)
    fusion = _filled(3000)
    prob, conf, ctx, _ = _stream(1, seed=3)
    outputs = [ModelOutput(float(p), float(c)) for p, c in zip(prob[0], conf[0], strict=True)]
    features = dict(zip(CONTEXT, map(float, ctx[0]), strict=True))
    p, c, _, x = fusion._rows.encode(outputs, features)
    tokens, context = _pad(fusion._tokens(p, c, None), 8), _pad(fusion._context_array(x, 1), 8)
    z, present = fusion.scaler.token_arrays(tokens)
    cz = fusion.scaler.context_array(context)
    assert cz is not None
    raw = torch.from_numpy(tokens)
    tensors = (
        torch.from_numpy(z),
        torch.from_numpy(present),
        prior_logits(raw),
        torch.from_numpy(cz),
    )

    def network() -> None:
        with torch.inference_mode():
            fusion.network(*tensors)

    parts: dict[str, Callable[[], object]] = {
        "encode outputs + features, token features (numpy)": lambda: (
            fusion._rows.encode(outputs, features),
            fusion._tokens(p, c, None),
            fusion._context_array(x, 1),
        ),
        "standardise (numpy)": lambda: (
            fusion.scaler.token_arrays(tokens),
            fusion.scaler.context_array(context),
        ),
        "network forward, padded to 8 rows (torch)": network,
        "whole `forward`": lambda: fusion.forward(outputs, features),
    }
    return [(name, _time(fn, n, repeats)[1]) for name, fn in parts.items()]


def training_breakdown(quick: bool) -> list[tuple[str, float]]:
    """Where one training step goes: median µs per phase, timed in place over many steps.

    Runs `FusionTrainer.step`'s phases in its order with a timestamp between phases, so
    each phase is measured with the caches as a real step leaves them (timed alone in a
    loop, each would look faster). The scaler refit runs every 64th step: its row is the
    mean per step; the others are medians.
    """
    n = 300 if quick else 3000
    fusion = _filled(6000, val_every=NEVER)
    trainer = fusion.trainer
    names = [
        "refit the input standardiser (every 64th step; mean)",
        "sample the mini-batch (ring slots, gather)",
        "standardise tokens and context, prior logits",
        "forward with dropout + BCE loss (builds the autograd graph)",
        "zero grad + backward",
        "clip the gradient norm (+ the loss/norm host syncs)",
        "AdamW update (LR schedule, flat buffers)",
    ]
    laps: list[list[float]] = [[] for _ in names]
    for _ in range(n):
        stamps = [time.perf_counter()]
        trainer.refit_scaler_if_due()
        stamps.append(time.perf_counter())
        tokens, context, labels = trainer.sample_batch()
        stamps.append(time.perf_counter())
        inputs = trainer.network_inputs(tokens, context)
        stamps.append(time.perf_counter())
        loss = trainer.training_loss(inputs, labels)
        stamps.append(time.perf_counter())
        trainer.backward(loss)
        stamps.append(time.perf_counter())
        loss.item()
        trainer.optimizer.clip_grad_norm(trainer.config.gradient_clip)
        stamps.append(time.perf_counter())
        trainer.apply_gradients()
        stamps.append(time.perf_counter())
        for lap, (start, end) in zip(laps, itertools.pairwise(stamps), strict=True):
            lap.append((end - start) * 1e6)
    rows = [(names[0], statistics.mean(laps[0]))]
    rows += [(name, statistics.median(lap)) for name, lap in zip(names[1:], laps[1:], strict=True)]
    whole = _time(lambda: trainer.step(fusion.samples_seen), n // 3, 3)[0]
    return [*rows, ("whole `step` (median)", whole)]


def memory_rows() -> list[tuple[str, str, str]]:
    fusion = _filled(6000)
    sizes = fusion.memory_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        fusion.save(tmp)
        files = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
    kib = lambda b: f"{b / 1024:.1f} KiB"  # noqa: E731
    return [
        (
            f"model weights ({fusion.parameter_count()} parameters, float32)",
            "~100 KB",
            kib(sizes["model"]),
        ),
        (
            "training state (gradient, AdamW moments, decay mask, best-weight snapshot)",
            "",
            kib(sizes["optimizer"]),
        ),
        (
            f"sample buffer ({fusion.config.buffer_size} samples, {N_MODELS} models, "
            f"{len(CONTEXT)} context)",
            "~500 KB",
            kib(sizes["buffer"]),
        ),
        (
            "checkpoint: fusion_model.pt / fusion_state.json",
            "",
            f"{kib(files['fusion_model.pt'])} / {kib(files['fusion_state.json'])}",
        ),
    ]


def render(
    forward: list[Timing],
    training: list[Timing],
    breakdown: list[tuple[str, float]],
    step_breakdown: list[tuple[str, float]],
    memory: list[tuple[str, str, str]],
) -> str:
    lines = [
        "## TransformerFusion",
        "",
        "`.venv/bin/python -m benchmarks.bench_fusion` — one torch thread on CPU, default",
        "`[fusion]` config (hidden 32, 2 heads, 1 layer), "
        f"{N_MODELS} models + {len(CONTEXT)} context features,",
        f"full buffer. {machine_line()} Load average at start: {os.getloadavg()[0]:.2f}.",
        "",
        "| operation | design doc | target | median | best repeat |",
        "|---|---|---|---|---|",
    ]
    for t in forward + training:
        lines.append(
            f"| {t.name} | {t.design} | {t.target} | {_fmt(t.median_us)} | {_fmt(t.best_us)} |"
        )
    lines += ["", "Where one 1-symbol `forward` goes (best repeat):", ""]
    lines += ["| part | time |", "|---|---|"]
    lines += [f"| {name} | {_fmt(us)} |" for name, us in breakdown]
    lines += ["", "Where one training step goes (batch 32, phases timed in place):", ""]
    lines += ["| part | time |", "|---|---|"]
    lines += [f"| {name} | {_fmt(us)} |" for name, us in step_breakdown]
    lines += ["", "| memory | design doc | measured |", "|---|---|---|"]
    lines += [f"| {name} | {design} | {value} |" for name, design, value in memory]
    return "\n".join(lines) + "\n"


def _fmt(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    body = render(
        forward_timings(args.quick),
        training_timings(args.quick),
        forward_breakdown(args.quick),
        training_breakdown(args.quick),
        memory_rows(),
    )
    print(body)
    if not args.no_write:
        write_section("fusion", body)


if __name__ == "__main__":
    main()
