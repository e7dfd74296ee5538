"""Live trading is opt-in twice; `[live]` config is strict and validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from titan.config.live import LiveConfig
from titan.trading.guard import LiveTradingRefused, require_live_confirmation


@pytest.mark.parametrize("mode", ["paper", "backtest"])
def test_live_is_refused_unless_the_config_says_live(mode: str) -> None:
    with pytest.raises(LiveTradingRefused, match=f"mode = {mode!r}"):
        require_live_confirmation(mode, True, {"TITAN_CONFIRM_LIVE": "yes"})


@pytest.mark.parametrize("value", [None, "", "no", "true", "YES", "1", "yes please"])
def test_live_mode_alone_is_refused_without_confirmation(value: str | None) -> None:
    """Only TITAN_CONFIRM_LIVE=yes (or the flag) confirms."""
    env = {} if value is None else {"TITAN_CONFIRM_LIVE": value}
    with pytest.raises(LiveTradingRefused, match="--confirm-live"):
        require_live_confirmation("live", False, env)


def test_live_mode_with_the_flag_or_the_env_is_allowed_and_logged() -> None:
    with capture_logs() as logs:
        require_live_confirmation("live", True, {})
        require_live_confirmation("live", False, {"TITAN_CONFIRM_LIVE": "yes"})
    assert [(e["event"], e["via"]) for e in logs] == [
        ("live_trading_confirmed", "flag"),
        ("live_trading_confirmed", "env"),
    ]


def test_live_config_defaults_are_safe_and_strict() -> None:
    config = LiveConfig()
    assert (config.exchange, config.order_type, config.api_url) == ("binance", "market", None)
    assert (config.unknown_orders, config.position_drift) == ("cancel", "adopt")
    with pytest.raises(ValidationError, match="extra"):
        LiveConfig(api_key="nope")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        config.order_type = "limit"  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        {"exchange": "not-an-exchange"},
        {"api_url": "127.0.0.1:8080"},
        {"order_type": "stop"},
        {"recv_window_ms": 120_000},
        {"unknown_orders": "ignore"},
    ],
)
def test_live_config_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LiveConfig(**bad)
