"""`[fusion]`: the TransformerFusion meta-model (design: transformer-fusion.md).

The first twelve keys are the design document's; the rest make the online-learning
behaviour explicit (see `titan/fusion/__init__.py` for what each defence does).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from titan.config.base import Section


class FusionConfig(Section):
    enabled: bool = True
    hidden_dim: int = Field(32, ge=2)
    num_heads: int = Field(2, ge=1)
    num_layers: int = Field(1, ge=1)
    ffn_dim: int = Field(64, ge=1, description="width of the feed-forward block")
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    learning_rate: float = Field(0.001, gt=0.0)
    l2_lambda: float = Field(0.01, ge=0.0, description="AdamW decoupled weight decay")
    warmup_steps: int = Field(100, ge=0, description="linear LR warm-up from 0 over these steps")
    lr_decay_steps: int = Field(10_000, ge=1, description="cosine decay length after warm-up")
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0, description="LR floor after the decay")
    min_samples: int = Field(
        200, ge=0, description="outcomes seen before fusion replaces the average"
    )
    val_split: float = Field(0.2, ge=0.0, lt=1.0, description="newest fraction held out")
    val_every: int = Field(
        10, ge=1, description="validate every N train steps; patience counts validations"
    )
    gradient_clip: float = Field(1.0, gt=0.0)
    early_stopping_patience: int = Field(50, ge=1, description="validations without improvement")
    early_stopping_delta: float = Field(0.001, ge=0.0)
    batch_size: int = Field(32, ge=1)
    buffer_size: int = Field(5000, ge=2)
    train_every: int = Field(
        256,
        ge=1,
        description="train one mini-batch every N new samples (N = batch_size: each sample "
        "once on average); on BTC 1m 32, 128 and 256 scored alike and 256 costs 1/8 (README)",
    )
    require_beating_average: bool = Field(
        True,
        description="answer with the simple average unless the network's latest validation "
        "loss beats the average's on the same held-out samples",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide_width(self) -> FusionConfig:
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"fusion.hidden_dim ({self.hidden_dim}) must be divisible by "
                f"fusion.num_heads ({self.num_heads})"
            )
        return self
