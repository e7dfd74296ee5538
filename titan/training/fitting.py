"""Build and fit any base model by name on `Samples` (neural and classic alike).

`fit_models` trains a list of models on one training set in order; the neural ensemble
reuses the LSTM, CNN and attention models fitted just before it (their weights are
frozen and only its heads are trained), which is the design's pre-train-then-freeze
recipe at no extra cost. Neural models get labels and returns (they regress returns when
``neural.objective`` is ``"return"``, learn the direction and fit a return line on their
held-out tail otherwise); classic models get labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog

from titan.config.models import ModelsConfig
from titan.config.training import NeuralConfig
from titan.features.spec import FEATURE_NAMES
from titan.models.base import BaseModel, FloatArray
from titan.models.dataset import feature_columns, purge_gap
from titan.models.neural.ensemble import BASE_NAMES
from titan.models.neural.fitting import EvalRecord, FitHistory
from titan.models.neural.meta import NeuralEnsemble
from titan.models.neural.model import NeuralModel
from titan.models.neural.registry import NEURAL_NAMES, build_neural
from titan.models.registry import build_model
from titan.training.data import Samples

log = structlog.get_logger(__name__)
EvalHook = Callable[[str, str, EvalRecord], None]  # (model, part, record)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build models by name (picklable: sent to worker processes)."""

    neural: NeuralConfig = field(default_factory=NeuralConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)

    def build(self, name: str) -> BaseModel:
        if name in NEURAL_NAMES:
            purge = purge_gap(self.models.horizon, self.neural.lookback, self.models.extra_purge)
            return build_neural(name, self.neural, purge=purge)
        return build_model(name, self.models)


@dataclass(frozen=True)
class ModelFit:
    name: str
    seconds: float
    samples: int
    fitted: bool
    histories: dict[str, FitHistory]


def model_windows(model: BaseModel, windows: FloatArray) -> FloatArray:
    """The model's columns and last `lookback` steps of full 40-feature windows."""
    lookback = model.input_spec.lookback
    recent = windows[:, windows.shape[1] - lookback :, :]
    if model.input_spec.features == tuple(FEATURE_NAMES):
        return recent
    return recent[:, :, feature_columns(model.input_spec)]


def fit_one(
    model: BaseModel,
    data: Samples,
    neural: NeuralConfig,
    fitted: dict[str, BaseModel],
    on_eval: EvalHook | None = None,
) -> ModelFit:
    """Fit `model` on `data`; the neural ensemble over `fitted` bases when all are there."""
    windows = model_windows(model, data.windows)
    returns = data.returns
    start = time.perf_counter()
    if isinstance(model, NeuralModel):
        if on_eval is not None:
            hook, name = on_eval, model.name
            model.on_eval = lambda part, record: hook(name, part, record)
        bases = [fitted.get(name) for name in BASE_NAMES]
        if isinstance(model, NeuralEnsemble) and _all_fitted_neural(bases):
            model.fit_from_bases(bases, windows, data.labels, returns)  # type: ignore[arg-type]
        else:
            model.fit_supervised(windows, data.labels, returns)
        model.on_eval = None
    else:
        model.fit(windows, data.labels)
    seconds = time.perf_counter() - start
    histories = dict(model.histories) if isinstance(model, NeuralModel) else {}
    ok = bool(np.isfinite(model.predict(windows[-1:]).prob_up).all()) if len(data) else False
    return ModelFit(model.name, seconds, int(np.isfinite(data.labels).sum()), ok, histories)


def _all_fitted_neural(models: Sequence[BaseModel | None]) -> bool:
    return all(isinstance(m, NeuralModel) and m.is_fitted for m in models)


def fit_models(
    names: Sequence[str],
    data: Samples,
    spec: ModelSpec,
    on_fitted: Callable[[ModelFit], None] | None = None,
    on_eval: EvalHook | None = None,
) -> tuple[dict[str, BaseModel], dict[str, ModelFit]]:
    """Fresh models called `names`, each fitted on `data` (bases before the ensemble)."""
    models: dict[str, BaseModel] = {}
    fits: dict[str, ModelFit] = {}
    for name in ordered(names):
        model = spec.build(name)
        fits[name] = fit_one(model, data, spec.neural, models, on_eval)
        models[name] = model
        log.info(
            "model_fitted",
            model=name,
            seconds=round(fits[name].seconds, 2),
            samples=fits[name].samples,
            fitted=fits[name].fitted,
            **_summary(fits[name].histories),
        )
        if on_fitted is not None:
            on_fitted(fits[name])
    return {n: models[n] for n in names}, {n: fits[n] for n in names}


def ordered(names: Sequence[str]) -> list[str]:
    """Fit order: everything else first, the neural ensemble after its bases."""
    return sorted(names, key=lambda name: name == "neural_ensemble")


def _summary(histories: dict[str, FitHistory]) -> dict[str, object]:
    return {f"{part}_steps": h.steps for part, h in histories.items()} | {
        f"{part}_best_val": round(h.best_val, 6) for part, h in histories.items()
    }
