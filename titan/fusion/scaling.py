"""Per-column standardisation of raw inputs, fitted on the training part of the buffer.

The statistics are refitted by the trainer (first step, then periodically) from the
chronological training region only (never the validation samples); the forward pass uses
the latest statistics. Before the first step they are the identity (mean 0, std 1).
Standardised values are clipped to +-`Z_CLIP`; NaN (missing) raw values become 0 with a
presence flag of 0.

Training standardises torch tensors on the device; inference standardises the numpy arrays
it was given with the same float32 operations (IEEE-exact, so the same bits) because at
one row numpy's per-call cost is a fraction of torch's.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from titan.fusion.inputs import F32

Bools = npt.NDArray[np.bool_]

Z_CLIP = 8.0
MIN_STD = 1e-6


def _masked_moments(raw: Tensor) -> tuple[Tensor, Tensor]:
    """Column mean and std over dim 0, ignoring NaN; std 1 where degenerate."""
    ok = raw == raw  # raw arrays hold finite values or NaN (see titan.fusion.inputs)
    count = ok.sum(0).clamp_min(1)
    mean = torch.where(ok, raw, 0.0).sum(0) / count
    var = torch.where(ok, raw - mean, 0.0).square().sum(0) / count
    std = var.sqrt()
    return mean, torch.where(std > MIN_STD, std, 1.0)


def _standardise(raw: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Standardised, clipped values; 0 where raw is NaN (clamp keeps NaN, then zeroed)."""
    return (raw - mean).div_(std).clamp_(-Z_CLIP, Z_CLIP).nan_to_num_(0.0)


def _standardise_array(raw: F32, mean: F32, std: F32) -> tuple[F32, Bools]:
    """`_standardise` for numpy float32 arrays, bit for bit."""
    ok = raw == raw
    with np.errstate(over="ignore"):  # a huge raw value saturates at the clip, as in torch
        z = np.minimum(np.maximum((raw - mean) / std, -Z_CLIP), Z_CLIP)
    return np.where(ok, z, np.float32(0.0)), ok


class Standardiser:
    """Mean/std for token columns (M, F) and context columns (C,)."""

    def __init__(self, n_models: int, n_token: int, n_context: int, device: torch.device):
        self.token_mean = torch.zeros(n_models, n_token, device=device)
        self.token_std = torch.ones(n_models, n_token, device=device)
        self.context_mean = torch.zeros(n_context, device=device)
        self.context_std = torch.ones(n_context, device=device)
        self._arrays = self._mirror()

    def _mirror(self) -> dict[str, F32]:
        """Host copies of the statistics for the numpy inference path."""
        return {name: t.detach().cpu().numpy().copy() for name, t in self.state().items()}

    def fit(self, tokens: Tensor, context: Tensor) -> None:
        """Refit from raw (N, M, F) tokens and (N, C) context."""
        self.token_mean, self.token_std = _masked_moments(tokens)
        if context.shape[-1]:
            self.context_mean, self.context_std = _masked_moments(context)
        self._arrays = self._mirror()

    def tokens(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        """Raw (B, M, F) -> standardised tokens and the (B, M) present mask (prob_up not NaN).

        A missing model's other columns are left as they are: its token is masked out of
        attention, so they cannot reach the decision.
        """
        prob = raw[..., 0]
        return _standardise(raw, self.token_mean, self.token_std), prob == prob

    def context(self, raw: Tensor | None) -> Tensor | None:
        """Raw (B, C) -> (B, 2C): standardised values then presence flags; None without context."""
        if raw is None or not raw.shape[-1]:
            return None
        z = _standardise(raw, self.context_mean, self.context_std)
        return torch.cat([z, (raw == raw).to(z.dtype)], dim=-1)

    def token_arrays(self, raw: F32) -> tuple[F32, Bools]:
        """`tokens` for a numpy (B, M, F) array."""
        z, ok = _standardise_array(raw, self._arrays["token_mean"], self._arrays["token_std"])
        return z, ok[..., 0]

    def context_array(self, raw: F32) -> F32 | None:
        """`context` for a numpy (B, C) array."""
        if not raw.shape[-1]:
            return None
        arrays = self._arrays
        z, ok = _standardise_array(raw, arrays["context_mean"], arrays["context_std"])
        return np.concatenate([z, ok.astype(np.float32)], axis=-1)

    def state(self) -> dict[str, Tensor]:
        return {
            "token_mean": self.token_mean,
            "token_std": self.token_std,
            "context_mean": self.context_mean,
            "context_std": self.context_std,
        }

    def load(self, state: dict[str, Tensor]) -> None:
        self.token_mean = state["token_mean"].clone()
        self.token_std = state["token_std"].clone()
        self.context_mean = state["context_mean"].clone()
        self.context_std = state["context_std"].clone()
        self._arrays = self._mirror()
