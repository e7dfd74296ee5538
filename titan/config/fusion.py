"""`[fusion]`: the TransformerFusion meta-model (design: transformer-fusion.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from titan.config.base import Section


class FusionConfig(Section):
    enabled: bool = True
    hidden_dim: int = Field(32, ge=2)
    num_heads: int = Field(2, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    learning_rate: float = Field(0.001, gt=0.0)
    l2_lambda: float = Field(0.01, ge=0.0)
    warmup_steps: int = Field(100, ge=0)
    min_samples: int = Field(200, ge=0)
    val_split: float = Field(0.2, ge=0.0, lt=1.0)
    gradient_clip: float = Field(1.0, gt=0.0)
    early_stopping_patience: int = Field(50, ge=1)
    early_stopping_delta: float = Field(0.001, ge=0.0)
    batch_size: int = Field(32, ge=1)
    buffer_size: int = Field(5000, ge=2)
    train_every: int = Field(1, ge=1, description="train one mini-batch every N new samples")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
