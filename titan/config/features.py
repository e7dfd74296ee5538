"""`[features]`: rolling feature buffers."""

from __future__ import annotations

from pydantic import Field, model_validator

from titan.config.base import Section


class FeaturesConfig(Section):
    buffer_size: int = Field(512, ge=64, description="feature rows kept per symbol")
    window: int = Field(30, ge=1, description="timesteps in a model input window")

    @model_validator(mode="after")
    def _window_fits_buffer(self) -> FeaturesConfig:
        if self.window > self.buffer_size:
            raise ValueError(
                f"features.window={self.window} exceeds features.buffer_size={self.buffer_size}"
            )
        return self
