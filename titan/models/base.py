"""The common base-model contract (DESIGN.md §3).

Every base model predicts from a batch of feature windows and returns one `BatchOutput`:
`prob_up` in [0, 1], a `confidence` in [0, 1] and optional named extras (return,
quantiles ...). `ModelOutput` is one row of it: what the fusion consumes per model.
A missing or failed prediction is NaN, never a silent 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """One model's opinion about one symbol at one time."""

    prob_up: float
    confidence: float
    extras: Mapping[str, float] = field(default_factory=dict)

    @property
    def is_missing(self) -> bool:
        return not np.isfinite(self.prob_up)


MISSING = ModelOutput(prob_up=float("nan"), confidence=0.0)


@dataclass(frozen=True, slots=True)
class BatchOutput:
    """A model's outputs for a batch of B windows (one row per symbol or timestep)."""

    prob_up: FloatArray
    confidence: FloatArray
    extras: Mapping[str, FloatArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.prob_up.shape[0])

    def row(self, index: int) -> ModelOutput:
        extras = {name: float(values[index]) for name, values in self.extras.items()}
        return ModelOutput(float(self.prob_up[index]), float(self.confidence[index]), extras)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """What a model reads: named feature columns over `lookback` timesteps."""

    features: tuple[str, ...]
    lookback: int


@runtime_checkable
class BaseModel(Protocol):
    """Protocol every base model implements."""

    name: str
    input_spec: InputSpec

    def predict(self, windows: FloatArray) -> BatchOutput:
        """`windows`: (B, lookback, len(features)) -> one output row per window."""
        ...

    def fit(self, windows: FloatArray, labels: FloatArray) -> None:
        """Train on past windows and their realised labels (1 up, 0 down, NaN tie)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def parameter_count(self) -> int: ...
