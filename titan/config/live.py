"""`[live]`: the live (ccxt) broker, its credentials source and start-up reconciliation.

Live trading also needs `mode = "live"` and an explicit confirmation (`--confirm-live` or
TITAN_CONFIRM_LIVE=yes, see `titan.trading.guard`). No secret lives here: API keys come
from the environment (TITAN_API_KEY / TITAN_API_SECRET) or from `secrets_file` (mode 0600).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import ccxt
from pydantic import Field, field_validator

from titan.config.base import Section


class LiveConfig(Section):
    exchange: str = Field("binance", description="ccxt exchange id; spot markets only")
    api_url: str | None = Field(
        None, description="send every REST call here instead (tests: the fake exchange)"
    )
    secrets_file: Path | None = Field(
        None, description="TOML with api_key / api_secret, mode 0600; the environment wins"
    )
    order_type: Literal["market", "limit"] = Field(
        "market", description="how forecast orders are placed (flattening always uses market)"
    )
    limit_offset_bps: float = Field(
        0.0,
        ge=-1_000.0,
        le=1_000.0,
        description="limit price distance from the reference price on the favourable side "
        "(buys below, sells above); negative = marketable (buys above, sells below)",
    )
    unknown_orders: Literal["cancel", "adopt"] = Field(
        "cancel", description="open orders the ledger does not know, found on start"
    )
    position_drift: Literal["adopt", "halt"] = Field(
        "adopt", description="ledger vs exchange balances differ on start: adopt or refuse"
    )
    drift_tolerance: float = Field(
        1e-6, ge=0.0, lt=1.0, description="relative balance difference that is not drift"
    )
    dust_notional: float = Field(
        1.0, ge=0.0, description="balance differences worth less than this (quote) are dust"
    )
    recv_window_ms: int = Field(5_000, ge=1, le=60_000, description="Binance recvWindow")
    timeout_ms: int = Field(10_000, ge=100, le=120_000, description="per REST request")
    retry_attempts: int = Field(5, ge=1, le=20, description="network retries per call")
    max_tracked_orders: int = Field(
        1_000, ge=1, description="resting orders watched for fills (bounded)"
    )

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        if value not in ccxt.exchanges:
            raise ValueError(f"unknown ccxt exchange {value!r}")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("api_url must start with http:// or https://")
        return value
