"""Small building blocks shared by the neural base learners."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def count_parameters(module: nn.Module) -> int:
    """Every parameter (trainable or frozen); buffers such as BatchNorm statistics excluded."""
    return sum(p.numel() for p in module.parameters())


def dense_block(n_in: int, n_out: int, dropout: float) -> nn.Sequential:
    """The documents' FC block: Linear + ReLU + BatchNorm + Dropout."""
    return nn.Sequential(
        nn.Linear(n_in, n_out), nn.ReLU(), nn.BatchNorm1d(n_out), nn.Dropout(dropout)
    )


def seeded(seed: int, build: Callable[[], M]) -> M:
    """Build a module with its own seeded RNG, leaving the global torch RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
