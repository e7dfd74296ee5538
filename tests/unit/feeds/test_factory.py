"""build_live_feed: impossible setups are refused up front, with the key to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from titan.clock import SimClock
from titan.config.live_feed import LiveFeedConfig
from titan.data.feeds import LiveFeedFactory, build_live_feed
from titan.data.feeds.factory import exchange_options
from titan.data.store import CandleStore


def build(
    tmp_path: Path, kind: Any = "websocket", exchange: str = "binance", **config: Any
) -> LiveFeedFactory:
    return build_live_feed(
        LiveFeedConfig(**config),
        kind,
        exchange,
        ["BTC/USDT"],
        "1m",
        SimClock(0),
        CandleStore(tmp_path),
    )


def test_valid_setup_gives_a_factory_with_shared_health(tmp_path: Path) -> None:
    factory = build(tmp_path)
    assert isinstance(factory, LiveFeedFactory)
    assert factory.health.snapshot()["kind"] == "websocket"


@pytest.mark.parametrize(
    ("kind", "exchange", "config", "message"),
    [
        ("carrier_pigeon", "binance", {}, "unknown live feed kind"),
        ("websocket", "kraken", {}, "no websocket parser"),
        ("rest", "binance", {"poll_delay_s": 60.0}, "poll_delay_s"),
        ("websocket", "binanceusdm", {}, "fstream"),
    ],
)
def test_impossible_setups_are_refused(
    tmp_path: Path, kind: str, exchange: str, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build(tmp_path, kind, exchange, **config)


def test_binance_loads_spot_markets_only_unless_configured_otherwise() -> None:
    assert exchange_options("binance", LiveFeedConfig()) == {"fetchMarkets": {"types": ["spot"]}}
    custom = LiveFeedConfig(exchange_options={"fetchMarkets": {"types": ["linear"]}})
    assert exchange_options("binance", custom)["fetchMarkets"] == {"types": ["linear"]}
    assert exchange_options("kraken", LiveFeedConfig()) == {}
