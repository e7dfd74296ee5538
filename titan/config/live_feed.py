"""`[feed.live]`: live ingestion (REST polling and exchange websocket feeds).

Durations are seconds. Candle timing (poll delay, assembly grace, staleness, connection
age) is measured on the engine's clock; backoff and websocket keepalive are network
timers (real seconds).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from titan.config.base import Section

DAY_S = 24 * 3600.0


class LiveFeedConfig(Section):
    ws_url: str = Field(
        "wss://stream.binance.com:9443",
        description="websocket base URL; the feed appends /stream?streams=...",
    )
    api_url: str | None = Field(
        None, description="override every REST endpoint's scheme+host (tests, proxies)"
    )
    exchange_options: dict[str, Any] = Field(
        default_factory=dict, description="ccxt `options` (merged over Titan's defaults)"
    )
    request_timeout_s: float = Field(10.0, gt=0.0, description="ccxt REST request timeout")
    poll_delay_s: float = Field(2.0, ge=0.0, description="REST poll this long after a close")
    poll_retry_s: float = Field(2.0, gt=0.0, description="re-poll period while a close is late")
    warmup_candles: int = Field(1000, ge=0, description="closed candles fetched on a fresh start")
    max_catchup_candles: int = Field(
        43_200, ge=1, description="longest catch-up after downtime (older candles are skipped)"
    )
    page_limit: int = Field(1000, ge=1, le=1000, description="candles per REST page")
    assemble_grace_s: float = Field(
        10.0, ge=0.0, description="after a close, wait this long for late symbols"
    )
    stale_after_s: float = Field(
        90.0, ge=0.0, description="an interval whose close is older than this is not tradable"
    )
    max_connection_age_s: float = Field(
        23.5 * 3600, gt=0.0, le=DAY_S, description="reconnect before the 24 h limit"
    )
    ping_interval_s: float = Field(20.0, gt=0.0)
    ping_timeout_s: float = Field(20.0, gt=0.0)
    open_timeout_s: float = Field(10.0, gt=0.0)
    close_timeout_s: float = Field(5.0, gt=0.0)
    backoff_base_s: float = Field(0.5, gt=0.0)
    backoff_cap_s: float = Field(60.0, gt=0.0)
    rest_max_attempts: int = Field(8, ge=1, description="REST tries before a call gives up")
    persist_every: int = Field(60, ge=1, description="append to the store every N intervals")
    max_pending_intervals: int = Field(
        5000, ge=10, description="bound on intervals assembled but not yet consumed"
    )
    seed: int | None = Field(None, description="jitter seed (tests); None = random")

    @field_validator("ws_url")
    @classmethod
    def _ws_scheme(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("ws", "wss"):
            raise ValueError("ws_url must start with ws:// or wss://")
        return value.rstrip("/")

    @field_validator("api_url")
    @classmethod
    def _http_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("api_url must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LiveFeedConfig:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be >= backoff_base_s")
        if self.max_pending_intervals < 2 * self.page_limit:
            raise ValueError("max_pending_intervals must be >= 2 * page_limit")
        return self
