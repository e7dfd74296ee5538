"""Config sections shared by every mode: runtime, data, feed, logging."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from titan.config.base import Section
from titan.config.live_feed import LiveFeedConfig
from titan.data.timeframes import timeframe_ms

Mode = Literal["live", "paper", "backtest"]


class RuntimeConfig(Section):
    threads: int = Field(1, ge=1, description="torch / LightGBM threads (1 is fastest on 2 cores)")
    seed: int = 0
    state_dir: Path = Path("state")


class DataConfig(Section):
    store: Path = Path("backtests/data")
    exchange: str = "binanceusdm"
    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    timeframe: str = "1m"

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        timeframe_ms(value)
        return value

    @field_validator("symbols")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one symbol is required")
        if len(set(value)) != len(value):
            raise ValueError("symbols must be unique")
        return value


class FeedConfig(Section):
    kind: Literal["replay", "rest", "websocket"] = "replay"
    speed: float = Field(0.0, ge=0.0, description="replay speed-up; 0 = as fast as possible")
    start: str | None = Field(
        None, description="replay start (ISO 8601 UTC), default: first candle"
    )
    end: str | None = Field(None, description="replay end (ISO 8601 UTC), default: last candle")
    precompute_features: bool = Field(
        True,
        description="replay only: compute the feature rows in one batch pass (bit-identical "
        "to streaming); its checkpoints then continue only as a replay",
    )
    live: LiveFeedConfig = Field(default_factory=LiveFeedConfig)


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    stream: Literal["stdout", "stderr"] = "stdout"
    file: Path | None = None
