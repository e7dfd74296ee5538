"""`NeuralModel`: a network behind Titan's base-model contract (DESIGN.md §3).

Input: windows (B, lookback=30, 40 features), batch first. Fitting (each call replaces
the previous model; inputs chronological, never shuffled across time):

1. Rows with a tie or unresolved label (NaN), a non-finite window or (with returns) a
   non-finite return are dropped, so ties change nothing. Fewer than ``min_samples``
   rows left, or one class only: the model stays unfitted.
2. Chronological split: the newest ``valid_fraction`` is the held-out *tail*; the
   training part ends ``purge`` samples before it (default `purge_gap(1, lookback)`:
   no candle a training sample reads is read by a tail sample).
3. Per-feature standardisation fitted on the training part (`FeatureScaler`).
4. Target (``config.objective``): ``"return"`` regresses the next-period return divided
   by its training std (Huber loss), as the design document does; ``"direction"`` (the
   default: it scored better walk-forward, see docs/neural.md) learns the direction
   (BCE on logits). Without returns (`fit`, the BaseModel signature) it is always the
   direction. Trained by `train_network` (early stopping on the tail).
5. ``prob_up`` = a `LogisticCalibrator` fitted on the network's outputs over the tail
   (past data, out of sample for the weights): the network's output mapped to P(up).
6. The return head: the regression output times the training std (``"return"``), or a
   least-squares line ``return ~ a + b * score`` fitted on the tail (``"direction"``
   with returns given); without returns there is none (NaN).

Outputs: ``prob_up`` (NaN before the first fit and for a window with a non-finite
value); ``confidence = |2 prob_up - 1|`` (0 when missing); extras ``score`` (the raw
network output: standardised return or direction logit) and ``return`` (the predicted
next-period return as a fraction, NaN without a return head). A batch runs as
one forward pass (non-finite rows are zeroed, then masked) in eval mode under
`torch.inference_mode`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from titan.config.training import NeuralConfig
from titan.features.spec import FEATURE_NAMES
from titan.fusion.fusion import resolve_device
from titan.models.base import BatchOutput, FloatArray, InputSpec
from titan.models.calibration import LogisticCalibrator
from titan.models.dataset import as_windows, finite_rows, purge_gap
from titan.models.neural.fitting import (
    EvalRecord,
    FitHistory,
    LossName,
    predict_chunks,
    train_network,
)
from titan.models.neural.layers import count_parameters, seeded
from titan.models.neural.scaling import FeatureScaler

Target = Literal["return", "direction"]
Builder = Callable[[], nn.Module]
_CALIBRATION_MIN = 50


@dataclass(frozen=True)
class Prepared:
    """One fit's tensors: training part and held-out tail, scaled and on the device."""

    x_train: Tensor
    t_train: Tensor
    x_val: Tensor
    t_val: Tensor
    y_val: FloatArray
    r_val: FloatArray | None
    loss: LossName
    target: Target
    scale: float


def direction_labels(returns: FloatArray) -> FloatArray:
    """1 for a positive return, 0 for a negative one, NaN for zero (a tie) or NaN."""
    r = np.asarray(returns, dtype=np.float64)
    return np.where(r > 0, 1.0, np.where(r < 0, 0.0, np.nan))


class NeuralModel:
    """A seeded network + feature scaler + calibrator; see the module docstring."""

    def __init__(
        self,
        name: str,
        build: Builder,
        config: NeuralConfig | None = None,
        purge: int | None = None,
        features: Sequence[str] = FEATURE_NAMES,
    ) -> None:
        self.name = name
        self.config = config or NeuralConfig()
        self.input_spec = InputSpec(tuple(features), self.config.lookback)
        self.purge = purge_gap(1, self.config.lookback) if purge is None else int(purge)
        self.device = resolve_device(self.config.trainer.device)
        self.on_eval: Callable[[str, EvalRecord], None] | None = None
        self._build = build
        self.network = self._fresh(self.config.seed)
        self._clear()

    # ------------------------------------------------------------------ state

    def _fresh(self, seed: int) -> nn.Module:
        return seeded(seed, self._build).to(self.device)

    def _clear(self) -> None:
        self.scaler: FeatureScaler | None = None
        self.calibrator: LogisticCalibrator | None = None
        self.target: Target | None = None
        self.return_map = (float("nan"), float("nan"))  # return ~ a + b * score
        self.histories: dict[str, FitHistory] = {}

    @property
    def is_fitted(self) -> bool:
        return self.calibrator is not None and self.scaler is not None

    def parameter_count(self) -> int:
        """The network's parameters (the architecture's size, fitted or not)."""
        return count_parameters(self.network)

    # ---------------------------------------------------------------- predict

    def predict(self, windows: FloatArray) -> BatchOutput:
        w = as_windows(windows, self.input_spec)
        n = w.shape[0]
        prob, score = np.full(n, np.nan), np.full(n, np.nan)
        rows = finite_rows(w)
        if self.calibrator is not None and rows.any():
            score = np.where(rows, self.scores(np.where(rows[:, None, None], w, 0.0)), np.nan)
            prob = self.calibrator.predict(score)
        confidence = np.where(np.isfinite(prob), np.abs(2.0 * prob - 1.0), 0.0)
        intercept, slope = self.return_map
        return BatchOutput(prob, confidence, {"score": score, "return": intercept + slope * score})

    def scores(self, windows: FloatArray) -> FloatArray:
        """Raw network outputs (B,) for finite windows of a fitted model."""
        assert self.scaler is not None, "unfitted model"
        x = torch.from_numpy(self.scaler.transform(windows)).to(self.device)
        out = predict_chunks(self.network, x, self.config.trainer.eval_batch)
        return out.cpu().numpy().astype(np.float64)

    # -------------------------------------------------------------------- fit

    def fit(self, windows: FloatArray, labels: FloatArray) -> None:
        """BaseModel signature: direction labels only (BCE)."""
        self.fit_supervised(windows, labels, None)

    def fit_returns(self, windows: FloatArray, returns: FloatArray) -> None:
        """Fit on next-period returns (labels: their signs, zero = tie), per the objective."""
        self.fit_supervised(windows, direction_labels(returns), returns)

    def fit_supervised(
        self, windows: FloatArray, labels: FloatArray, returns: FloatArray | None
    ) -> None:
        prepared = self._prepare(windows, labels, returns)
        if prepared is None:
            return
        network = self._train(prepared)
        self._install(network, prepared)

    def _usable(
        self, windows: FloatArray, labels: FloatArray, returns: FloatArray | None
    ) -> tuple[FloatArray, FloatArray, FloatArray | None] | None:
        w = as_windows(windows, self.input_spec)
        y = np.asarray(labels, dtype=np.float64).reshape(-1)
        if y.shape[0] != w.shape[0]:
            raise ValueError(f"{w.shape[0]} windows but {y.shape[0]} labels")
        keep = finite_rows(w) & ((y == 0.0) | (y == 1.0))
        r = None if returns is None else np.asarray(returns, dtype=np.float64).reshape(-1)
        if r is not None:
            if r.shape[0] != w.shape[0]:
                raise ValueError(f"{w.shape[0]} windows but {r.shape[0]} returns")
            keep &= np.isfinite(r)
        self._clear()
        kept = np.flatnonzero(keep)
        if kept.size < self.config.min_samples or _one_class(y[kept]):
            return None
        return w[kept], y[kept], None if r is None else r[kept]

    def _split(self, n: int) -> tuple[slice, slice] | None:
        n_valid = max(int(n * self.config.valid_fraction), 1)
        n_train = n - n_valid - self.purge
        if n_train < 2:
            return None
        return slice(0, n_train), slice(n - n_valid, n)

    def _prepare(
        self, windows: FloatArray, labels: FloatArray, returns: FloatArray | None
    ) -> Prepared | None:
        usable = self._usable(windows, labels, returns)
        if usable is None:
            return None
        w, y, r = usable
        split = self._split(y.size)
        if split is None or _one_class(y[split[1]]):
            return None
        train, valid = split
        self.scaler = self._given_scaler() or FeatureScaler.fit(w[train], self.config.feature_clip)
        loss: LossName = "bce"
        target, scale = y, 1.0
        if r is not None and self.config.objective == "return":
            scale = float(np.std(r[train])) or 1.0
            target, loss = r / scale, self.config.return_loss
        return Prepared(
            self._tensor(self.scaler.transform(w[train])),
            self._tensor(target[train]),
            self._tensor(self.scaler.transform(w[valid])),
            self._tensor(target[valid]),
            y[valid],
            None if r is None else r[valid],
            loss,
            "direction" if loss == "bce" else "return",
            scale,
        )

    def _given_scaler(self) -> FeatureScaler | None:
        """A scaler to reuse instead of fitting one (pre-trained parts bring theirs)."""
        return None

    def _tensor(self, array: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32).to(self.device)

    def _train(self, data: Prepared) -> nn.Module:
        network = self._fresh(self.config.seed)
        self.histories = {"network": self._fit_network(network, data, "network", 0)}
        return network

    def _fit_network(
        self, network: nn.Module, data: Prepared, part: str, offset: int
    ) -> FitHistory:
        callback = None
        if self.on_eval is not None:
            hook = self.on_eval

            def callback(record: EvalRecord) -> None:
                hook(part, record)

        return train_network(
            network,
            (data.x_train, data.t_train),
            (data.x_val, data.t_val),
            data.loss,
            self.config.trainer,
            self.config.seed + offset,
            callback,
        )

    def _calibration_rows(self, data: Prepared) -> slice:
        return slice(0, data.x_val.shape[0])

    def _install(self, network: nn.Module, data: Prepared) -> None:
        rows = self._calibration_rows(data)
        network.eval()
        scores = predict_chunks(network, data.x_val[rows], self.config.trainer.eval_batch)
        calibrator = LogisticCalibrator(l2=1e-3, min_samples=_CALIBRATION_MIN)
        calibrator.fit(scores.cpu().numpy().astype(np.float64), data.y_val[rows])
        if not calibrator.is_fitted:
            self.scaler = None
            return
        self.network, self.calibrator = network, calibrator
        self.target = data.target
        self.return_map = _return_map(data, rows, scores.cpu().numpy().astype(np.float64))

    # ------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain data only (loadable with ``torch.load(weights_only=True)``)."""
        fitted = self.is_fitted
        return {
            "model": self.name,
            "config": self.config.model_dump(mode="json"),
            "features": list(self.input_spec.features),
            "lookback": self.input_spec.lookback,
            "fitted": fitted,
            "network": _cpu_state(self.network) if fitted else None,
            "scaler": self.scaler.state_dict() if fitted and self.scaler else None,
            "calibrator": self.calibrator.state_dict() if self.calibrator else None,
            "target": self.target,
            "return_map": list(self.return_map),
            "histories": {k: h.to_json() for k, h in self.histories.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("model") != self.name:
            raise ValueError(f"state of model {state.get('model')!r} given to {self.name!r}")
        spec = (tuple(state["features"]), int(state["lookback"]))
        if spec != (self.input_spec.features, self.input_spec.lookback):
            raise ValueError("checkpoint was trained on other features or another lookback")
        saved = NeuralConfig.model_validate(state["config"]).architecture()
        if saved != self.config.architecture():
            changed = sorted(k for k, v in saved.items() if self.config.architecture().get(k) != v)
            raise ValueError(f"checkpoint has another architecture (differs in {changed})")
        self._clear()
        if not state["fitted"]:
            return
        network = self._fresh(self.config.seed)
        network.load_state_dict(state["network"])
        network.eval()
        self.network = network
        self.scaler = FeatureScaler.from_state(state["scaler"])
        self.calibrator = LogisticCalibrator()
        self.calibrator.load_state_dict(state["calibrator"])
        self.target = state["target"]
        intercept, slope = state["return_map"]
        self.return_map = (float(intercept), float(slope))


def _return_map(data: Prepared, rows: slice, scores: FloatArray) -> tuple[float, float]:
    """(a, b) with predicted return = a + b * score: the regression head's own scale, or a
    least-squares line over the calibration rows; NaN without returns."""
    if data.target == "return":
        return 0.0, data.scale
    if data.r_val is None:
        return float("nan"), float("nan")
    returns = data.r_val[rows]
    spread = float(np.var(scores))
    if spread <= 0.0:
        return float(np.mean(returns)), 0.0
    slope = float(np.cov(scores, returns, bias=True)[0, 1] / spread)
    return float(np.mean(returns) - slope * np.mean(scores)), slope


def _cpu_state(network: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


def _one_class(y: FloatArray) -> bool:
    return y.size == 0 or bool(y.min() == y.max())
