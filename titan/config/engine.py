"""`[engine]`: the daemon's cadences, persistence and reporting."""

from __future__ import annotations

from pydantic import Field

from titan.config.base import Section

DEFAULT_CONTEXT = ("return", "atr_14", "rsi_14", "bb_width", "volume_ratio", "adx_14")


class EngineConfig(Section):
    checkpoint_every: int = Field(1440, ge=1, description="intervals between checkpoints")
    keep_checkpoints: int = Field(3, ge=1)
    max_batch: int = Field(
        256,
        ge=1,
        description="replay only: decisions evaluated together between state changes (1 = step)",
    )
    context_features: tuple[str, ...] = Field(
        DEFAULT_CONTEXT, description="features of the decision candle given to the fusion"
    )
    stats_every: int = Field(240, ge=1, description="intervals between stored fusion stats")
    log_every: int = Field(1, ge=1, description="log one `interval` event every N intervals")
    report: bool = Field(True, description="write a report when a replay ends")
    kill_file: str = Field("KILL", description="kill switch: this file in runtime.state_dir")
    reports_dir: str = "backtests/reports"
