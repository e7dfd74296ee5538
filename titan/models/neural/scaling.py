"""Per-feature standardisation of windows, fitted on training rows only.

Titan's 40 features are scale-free but of very different sizes (a 1m return is about
1e-3, an RSI term about 0.3); the networks train on ``z = (x - mean) / std`` per
feature, with mean and std from the end rows of the training windows, clipped to
``+-clip`` so extreme (but finite) inputs stay finite and bounded. A feature constant
on the training rows gets std 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from titan.models.base import FloatArray

_TINY = 1e-12
Float32Array = npt.NDArray[np.float32]


class FeatureScaler:
    def __init__(self, mean: FloatArray, std: FloatArray, clip: float) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.clip = float(clip)

    @classmethod
    def fit(cls, windows: FloatArray, clip: float) -> FeatureScaler:
        """From the end rows of training windows (B, T, F) (each candle counted once)."""
        rows = windows[:, -1, :]
        std = rows.std(axis=0)
        return cls(rows.mean(axis=0), np.where(std > _TINY, std, 1.0), clip)

    def transform(self, windows: FloatArray, chunk: int = 4096) -> Float32Array:
        """(B, T, F) float64 -> standardised, clipped float32 (chunked: bounded temporaries)."""
        out = np.empty(windows.shape, dtype=np.float32)
        for i in range(0, windows.shape[0], chunk):
            z = (windows[i : i + chunk] - self.mean) / self.std
            out[i : i + chunk] = np.clip(z, -self.clip, self.clip)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "clip": self.clip,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureScaler:
        return cls(np.asarray(state["mean"]), np.asarray(state["std"]), float(state["clip"]))

    def same_as(self, other: FeatureScaler) -> bool:
        return bool(
            np.array_equal(self.mean, other.mean)
            and np.array_equal(self.std, other.std)
            and self.clip == other.clip
        )
