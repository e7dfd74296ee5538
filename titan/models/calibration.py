"""A small logistic calibrator: score(s) -> P(up), fitted by Newton's method in numpy.

``P(up | x) = sigmoid(b + w . z)`` with ``z = (x - mean) / scale`` standardised on the
training rows (``scale`` = population standard deviation, 1 for a constant column), so
the L2 penalty means the same for a score of size 1e-4 as for one of size 1.

Fitting minimises the mean negative log-likelihood plus ``l2 / 2 * |w|^2`` (the
intercept is not penalised) with Newton steps and step halving, which makes the fit
deterministic and convergent even on separable data. Rows with a NaN label (ties,
unresolved outcomes) or a non-finite score are excluded before fitting. With fewer than
``min_samples`` usable rows, or only one class among them, the calibrator is left
*unfitted*: `predict` then returns NaN (a missing prediction, never a silent 0.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from titan.models.base import FloatArray
from titan.models.dataset import BoolArray

_MAX_ITER = 100
_TOL = 1e-10
_MAX_HALVINGS = 30
_TINY_SCALE = 1e-300
_Z_CLIP = 1e12  # standardised scores are clipped here, so no overflow reaches the logit


def sigmoid(z: FloatArray) -> FloatArray:
    """Numerically stable logistic function (no overflow warnings)."""
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def usable_rows(x: FloatArray, y: FloatArray) -> BoolArray:
    """Boolean mask of rows with a 0/1 label and all-finite scores."""
    finite_x = np.isfinite(x).all(axis=1)
    return np.asarray(finite_x & ((y == 0.0) | (y == 1.0)))


class LogisticCalibrator:
    """Few-feature L2-regularised logistic regression, deterministic, numpy only."""

    def __init__(self, l2: float = 1e-3, min_samples: int = 50) -> None:
        if l2 < 0.0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.l2 = float(l2)
        self.min_samples = int(min_samples)
        self.mean: FloatArray | None = None
        self.scale: FloatArray | None = None
        self.coef: FloatArray | None = None
        self.intercept = float("nan")

    @property
    def is_fitted(self) -> bool:
        return self.coef is not None

    def fit(self, x: FloatArray, y: FloatArray) -> LogisticCalibrator:
        """Fit on scores `x` ((n,) or (n, k)) and labels `y` (1 up, 0 down, NaN excluded)."""
        x2 = _as_2d(x)
        labels = np.asarray(y, dtype=np.float64).reshape(-1)
        if labels.shape[0] != x2.shape[0]:
            raise ValueError(f"{x2.shape[0]} score rows but {labels.shape[0]} labels")
        keep = usable_rows(x2, labels)
        xs, ys = x2[keep], labels[keep]
        self._reset()
        if ys.size < max(self.min_samples, 2) or ys.min() == ys.max():
            return self
        self.mean = xs.mean(axis=0)
        std = xs.std(axis=0)
        self.scale = np.where(std > _TINY_SCALE, std, 1.0)
        design = np.hstack([np.ones((ys.size, 1)), (xs - self.mean) / self.scale])
        beta = _newton(design, ys, self.l2)
        self.intercept = float(beta[0])
        self.coef = beta[1:].copy()
        return self

    def logit(self, x: FloatArray) -> FloatArray:
        """Log-odds for each row; NaN when unfitted or the row has a non-finite score."""
        x2 = _as_2d(x)
        if self.coef is None or self.mean is None or self.scale is None:
            return np.full(x2.shape[0], np.nan)
        if x2.shape[1] != self.coef.size:
            raise ValueError(f"expected {self.coef.size} score columns, got {x2.shape[1]}")
        with np.errstate(all="ignore"):
            standard = np.clip((x2 - self.mean) / self.scale, -_Z_CLIP, _Z_CLIP)
            z = self.intercept + np.nan_to_num(standard) @ self.coef
        return np.where(np.isfinite(x2).all(axis=1), z, np.nan)

    def predict(self, x: FloatArray) -> FloatArray:
        """P(up) for each row; NaN when unfitted or the row has a non-finite score."""
        z = self.logit(x)
        out = np.full(z.shape, np.nan)
        finite = np.isfinite(z)
        out[finite] = sigmoid(z[finite])
        return out

    def parameter_count(self) -> int:
        """Fitted coefficients plus the intercept (0 when unfitted)."""
        return 0 if self.coef is None else self.coef.size + 1

    def state_dict(self) -> dict[str, Any]:
        """Plain data (floats and lists): JSON-, pickle- and torch.save-friendly."""
        fitted = self.coef is not None and self.mean is not None and self.scale is not None
        return {
            "l2": self.l2,
            "min_samples": self.min_samples,
            "fitted": fitted,
            "mean": _to_list(self.mean),
            "scale": _to_list(self.scale),
            "coef": _to_list(self.coef),
            "intercept": self.intercept,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.l2 = float(state["l2"])
        self.min_samples = int(state["min_samples"])
        self._reset()
        if state["fitted"]:
            self.mean = np.asarray(state["mean"], dtype=np.float64)
            self.scale = np.asarray(state["scale"], dtype=np.float64)
            self.coef = np.asarray(state["coef"], dtype=np.float64)
            self.intercept = float(state["intercept"])

    def _reset(self) -> None:
        self.mean = self.scale = self.coef = None
        self.intercept = float("nan")


def _as_2d(x: FloatArray) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"scores must be 1-D or 2-D, got shape {arr.shape}")
    return arr


def _to_list(values: FloatArray | None) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def _objective(design: FloatArray, y: FloatArray, beta: FloatArray, l2: float) -> float:
    z = design @ beta
    # mean of log(1 + e^z) - y z, computed stably
    nll = np.logaddexp(0.0, z) - y * z
    return float(nll.mean() + 0.5 * l2 * np.dot(beta[1:], beta[1:]))


def _newton(design: FloatArray, y: FloatArray, l2: float) -> FloatArray:
    """Minimise the penalised mean NLL from beta = (logit(base rate), 0, ...)."""
    n, k = design.shape
    rate = float(y.mean())
    beta = np.zeros(k)
    beta[0] = np.log(rate) - np.log1p(-rate)
    penalty = np.full(k, l2)
    penalty[0] = 1e-12  # keeps the Hessian invertible on degenerate columns
    current = _objective(design, y, beta, l2)
    for _ in range(_MAX_ITER):
        p = sigmoid(design @ beta)
        grad = design.T @ (p - y) / n + penalty * beta
        hess = (design.T * (p * (1.0 - p))) @ design / n + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta, current, moved = _halving_step(design, y, beta, step, current, l2)
        if not moved or float(np.max(np.abs(step))) < _TOL:
            break
    return beta


def _halving_step(
    design: FloatArray, y: FloatArray, beta: FloatArray, step: FloatArray, current: float, l2: float
) -> tuple[FloatArray, float, bool]:
    """Take the largest step 2^-j * step that does not increase the objective."""
    size = 1.0
    for _ in range(_MAX_HALVINGS):
        candidate = beta - size * step
        value = _objective(design, y, candidate, l2)
        if value <= current:
            return candidate, value, True
        size *= 0.5
    return beta, current, False
