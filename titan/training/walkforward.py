"""Walk-forward evaluation: train on a window, purge, test on the next, roll forward.

Folds come from `titan.models.dataset.walk_forward` over the series' samples: rolling
(or expanding) training windows of ``train_days``, a gap of ``horizon + lookback +
WARMUP + extra_purge`` samples (`titan.models.dataset.purge_gap`: no candle a training
sample reads, inputs with their indicators' look-back or label, is read by a test
sample), then
``test_days`` of test samples; the newest ``max_folds`` folds are kept. Never a
shuffled split across time.

Every fold fits fresh models on its training window and predicts its test window. The
test windows, in time order, form one out-of-sample stream on which each model, the
simple average of all models, the majority class (the training window's base rate)
and the TransformerFusion over all models (replayed online: it learns each outcome
after it resolves and keeps learning across the model swaps at fold boundaries) are
scored with ties excluded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog

from titan.config.engine import DEFAULT_CONTEXT
from titan.config.fusion import FusionConfig
from titan.config.training import WalkForwardConfig
from titan.evaluation.metrics import ForecastReport, base_rate, forecast_report
from titan.features.spec import FEATURE_NAMES
from titan.fusion.inputs import simple_average
from titan.models.base import BaseModel, FloatArray
from titan.models.dataset import IntArray, Split, purge_gap, walk_forward
from titan.training.data import Samples
from titan.training.fitting import EvalHook, ModelFit, ModelSpec, fit_models, model_windows
from titan.training.online import replay_fusion

log = structlog.get_logger(__name__)
DAY_MS = 86_400_000
FUSION, AVERAGE, MAJORITY = "fusion", "simple average", "majority class"


@dataclass(frozen=True)
class Fold:
    index: int
    split: Split
    train_ts: tuple[int, int]
    test_ts: tuple[int, int]
    base_rate: float
    fits: dict[str, ModelFit]
    prob: FloatArray  # (n_test, M) in model order
    confidence: FloatArray


@dataclass
class WalkForwardResult:
    names: tuple[str, ...]
    folds: list[Fold] = field(default_factory=list)
    ts: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    outcome: FloatArray = field(default_factory=lambda: np.empty(0))
    competitors: dict[str, FloatArray] = field(default_factory=dict)
    fusion_active: float = float("nan")
    last_models: dict[str, BaseModel] = field(default_factory=dict)

    def scores(self, rows: slice | None = None) -> dict[str, ForecastReport]:
        """Every competitor on the same rows (all, or one fold's `rows`)."""
        sl = rows or slice(None)
        return {k: forecast_report(v[sl], self.outcome[sl]) for k, v in self.competitors.items()}

    def fold_rows(self) -> list[slice]:
        starts = np.cumsum([0] + [f.prob.shape[0] for f in self.folds])
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(starts)]


def fold_splits(n: int, config: WalkForwardConfig, lookback: int, step_ms: int) -> list[Split]:
    """The walk-forward folds (sample index ranges) for `n` chronological samples."""
    per_day = DAY_MS / step_ms
    train = max(1, round(config.train_days * per_day))
    test = max(1, round(config.test_days * per_day))
    step = max(1, round((config.step_days or config.test_days) * per_day))
    gap = purge_gap(config.horizon, lookback, config.extra_purge)
    splits = list(walk_forward(n, train, test, gap, step, config.expanding))
    return splits[-config.max_folds :] if config.max_folds else splits


@dataclass(frozen=True)
class Hooks:
    """Progress callbacks (the CLI draws bars with them); all optional."""

    on_fold: Callable[[int, int, Split], None] | None = None
    on_fitted: Callable[[int, ModelFit], None] | None = None
    on_eval: EvalHook | None = None


def run_walk_forward(
    data: Samples,
    names: Sequence[str],
    spec: ModelSpec,
    config: WalkForwardConfig,
    step_ms: int,
    fusion: FusionConfig | None = None,
    hooks: Hooks | None = None,
) -> WalkForwardResult:
    """Fit and test every fold, then score the whole out-of-sample stream."""
    hooks = hooks or Hooks()
    splits = fold_splits(len(data), config, spec.neural.lookback, step_ms)
    result = WalkForwardResult(tuple(names))
    for index, split in enumerate(splits):
        log.info("train_fold", fold=index, folds=len(splits), **_ranges(data, split))
        if hooks.on_fold is not None:
            hooks.on_fold(index, len(splits), split)
        fold, models = _run_fold(index, data, split, names, spec, hooks)
        result.folds.append(fold)
        result.last_models = models
    _score_stream(result, data, splits, fusion or FusionConfig(device="cpu"), config.horizon)
    return result


def _run_fold(
    index: int,
    data: Samples,
    split: Split,
    names: Sequence[str],
    spec: ModelSpec,
    hooks: Hooks,
) -> tuple[Fold, dict[str, BaseModel]]:
    train, test = data.subset(split.train), data.subset(split.test)
    on_fitted = None
    if hooks.on_fitted is not None:
        hook = hooks.on_fitted

        def on_fitted(fit: ModelFit) -> None:
            hook(index, fit)

    models, fits = fit_models(names, train, spec, on_fitted, hooks.on_eval)
    outputs = [models[n].predict(model_windows(models[n], test.windows)) for n in names]
    fold = Fold(
        index,
        split,
        (int(train.ts[0]), int(train.ts[-1])),
        (int(test.ts[0]), int(test.ts[-1])),
        base_rate(train.labels),
        fits,
        np.column_stack([o.prob_up for o in outputs]),
        np.column_stack([o.confidence for o in outputs]),
    )
    return fold, models


def _ranges(data: Samples, split: Split) -> dict[str, int]:
    return {
        "train_start": int(data.ts[split.train.start]),
        "train_end": int(data.ts[split.train.stop - 1]),
        "test_start": int(data.ts[split.test.start]),
        "test_end": int(data.ts[split.test.stop - 1]),
    }


def _score_stream(
    result: WalkForwardResult,
    data: Samples,
    splits: Sequence[Split],
    fusion: FusionConfig,
    horizon: int,
) -> None:
    if not result.folds:
        return
    rows = np.concatenate([np.arange(s.test.start, s.test.stop) for s in splits])
    prob = np.vstack([f.prob for f in result.folds])
    confidence = np.vstack([f.confidence for f in result.folds])
    context_cols = [FEATURE_NAMES.index(name) for name in DEFAULT_CONTEXT]
    context = data.windows[rows, -1][:, context_cols]
    result.ts, result.outcome = data.ts[rows], data.labels[rows]
    fused, active = replay_fusion(
        prob, confidence, result.outcome, context, DEFAULT_CONTEXT, fusion, horizon
    )
    result.fusion_active = float(active.mean())
    majority = np.concatenate([np.full(f.prob.shape[0], f.base_rate) for f in result.folds])
    result.competitors = {FUSION: fused, AVERAGE: simple_average(prob)[0], MAJORITY: majority}
    for j, name in enumerate(result.names):
        result.competitors[name] = prob[:, j]
