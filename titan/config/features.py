"""`[features]`: rolling feature buffers."""

from __future__ import annotations

from pydantic import Field

from titan.config.base import Section


class FeaturesConfig(Section):
    buffer_size: int = Field(512, ge=64, description="candles kept per symbol")
    window: int = Field(30, ge=1, description="timesteps in a model input window")
