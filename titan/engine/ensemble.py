"""The ensemble: base models + TransformerFusion -> one Decision per symbol.

`decide` runs every base model once over a batch of feature windows (symbols, or
timesteps of a replay) and the fusion once over their outputs; `record_outcomes` feeds
resolved outcomes to `fusion.update_batch`; `refit` fits every base model walk-forward
on the resolved past held in a `TrainingHistory`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

import numpy as np

from titan.engine.history import TrainingHistory, spec_columns
from titan.features import FEATURE_NAMES
from titan.fusion import TransformerFusion
from titan.fusion.inputs import simple_average
from titan.models.base import BaseModel, FloatArray

Sizer = Callable[[float, float], float]  # (prob_up, confidence) -> target fraction of equity


class Inputs(NamedTuple):
    """What the fusion saw for one prediction: per-model prob/confidence and the context.

    (Decision and Inputs are NamedTuples: immutable, and made 4x faster than a frozen
    dataclass, which counts at one of each per decision in a replay.)"""

    prob: tuple[float, ...]
    confidence: tuple[float, ...]
    context: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"p": self.prob, "c": self.confidence, "x": self.context}  # JSON arrays

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inputs:
        return cls(tuple(data["p"]), tuple(data["c"]), tuple(data["x"]))


class Decision(NamedTuple):
    symbol: str
    ts: int
    close: float
    prob_up: float
    confidence: float
    baseline: float
    fused: bool
    target: float  # target position as a fraction of equity (negative = short)
    inputs: Inputs
    attention: tuple[float, ...] | None

    @property
    def action(self) -> str:
        return "long" if self.target > 0 else "short" if self.target < 0 else "flat"


class Ensemble:
    def __init__(
        self,
        models: Sequence[BaseModel],
        fusion: TransformerFusion,
        sizer: Sizer,
        horizon: int = 1,
    ) -> None:
        if fusion.n_models != len(models):
            raise ValueError(f"fusion expects {fusion.n_models} models, got {len(models)}")
        self.models = list(models)
        self.fusion = fusion
        self.sizer = sizer
        self.horizon = horizon
        self.names = tuple(model.name for model in self.models)
        self._columns = [spec_columns(m.input_spec, FEATURE_NAMES) for m in self.models]
        self.lookback = max(m.input_spec.lookback for m in self.models)
        self._context = np.array(
            [FEATURE_NAMES.index(n) for n in fusion.context_features], dtype=np.int64
        )

    def infer(self, windows: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per-model prob_up and confidence (B, M) and the fusion context (B, C)."""
        prob = np.empty((len(windows), len(self.models)))
        confidence = np.empty_like(prob)
        for j, (model, columns) in enumerate(zip(self.models, self._columns, strict=True)):
            lookback = model.input_spec.lookback
            output = model.predict(windows[:, windows.shape[1] - lookback :, columns])
            prob[:, j], confidence[:, j] = output.prob_up, output.confidence
        return prob, np.nan_to_num(confidence), windows[:, -1, self._context]

    def decide(
        self,
        symbols: Sequence[str],
        stamps: Sequence[int],
        closes: Sequence[float],
        windows: FloatArray,
    ) -> list[Decision]:
        """One decision per row of `windows` (B, lookback, 40): batched over symbols or time."""
        if len(windows) == 0:
            return []
        return self.decide_inferred(symbols, stamps, closes, *self.infer(windows))

    def decide_inferred(
        self,
        symbols: Sequence[str],
        stamps: Sequence[int],
        closes: Sequence[float],
        prob: FloatArray,
        confidence: FloatArray,
        context: FloatArray,
    ) -> list[Decision]:
        """`decide` from base-model outputs already inferred (`infer`'s three arrays)."""
        fused = self.fusion.forward_batch(prob, confidence, None, context)
        attention = _attention_rows(fused.attention, self.fusion.fallback_reason is None)
        inputs = [
            Inputs(tuple(p), tuple(c), tuple(x))
            for p, c, x in zip(prob.tolist(), confidence.tolist(), context.tolist(), strict=True)
        ]
        rows = zip(
            symbols,
            stamps,
            closes,
            fused.prob_up.tolist(),
            simple_average(prob)[0].tolist(),
            inputs,
            attention,
            strict=True,
        )
        return [self._decision(*row) for row in rows]

    def _decision(
        self,
        symbol: str,
        ts: int,
        close: float,
        prob_up: float,
        baseline: float,
        inputs: Inputs,
        attention: tuple[float, ...] | None,
    ) -> Decision:
        certainty = abs(2.0 * prob_up - 1.0)
        target = self.sizer(prob_up, certainty)
        fused = attention is not None
        return Decision(
            symbol, ts, close, prob_up, certainty, baseline, fused, target, inputs, attention
        )

    def record_outcomes(self, inputs: Sequence[Inputs], directions: Sequence[str]) -> None:
        """Feed resolved UP/DOWN outcomes, in order, to the fusion (ties are not passed in)."""
        if not inputs:
            return
        prob = np.array([i.prob for i in inputs], dtype=np.float64)
        confidence = np.array([i.confidence for i in inputs], dtype=np.float64)
        context = np.array([i.context for i in inputs], dtype=np.float64).reshape(len(inputs), -1)
        self.fusion.update_batch(prob, confidence, directions, None, context)

    def refit(
        self, history: TrainingHistory, min_train: int, skip: Collection[str] = ()
    ) -> dict[str, int]:
        """Fit every base model but `skip` on the resolved past (once it holds `min_train`
        labelled samples); returns the samples each model was fitted on (0 = not yet)."""
        used = {}
        for model, columns in zip(self.models, self._columns, strict=True):
            if model.name in skip:
                continue
            windows, labels = history.training_set(columns, model.input_spec.lookback, self.horizon)
            count = int(np.isfinite(labels).sum())
            used[model.name] = count if count >= min_train else 0
            if used[model.name]:
                model.fit(windows, labels)
        return used

    def model_states(self) -> list[dict[str, Any]]:
        return [model.state_dict() for model in self.models]

    def load_model_states(self, states: Sequence[dict[str, Any]]) -> None:
        for model, state in zip(self.models, states, strict=True):
            model.load_state_dict(state)


def _attention_rows(attention: FloatArray, active: bool) -> list[tuple[float, ...] | None]:
    """Each row's attention weights while the fusion answers (None when it falls back or a
    row has none)."""
    if not active:
        return [None] * len(attention)
    present: list[bool] = np.any(attention, axis=1).tolist()
    return [tuple(row) if ok else None for row, ok in zip(attention.tolist(), present, strict=True)]
