"""LiveFeedConfig: strict, frozen, validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from titan.config.live_feed import LiveFeedConfig


def test_defaults_target_binance_spot_and_renew_before_24_hours() -> None:
    config = LiveFeedConfig()
    assert config.ws_url == "wss://stream.binance.com:9443"
    assert config.api_url is None
    assert config.max_connection_age_s < 24 * 3600


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValidationError, match="extra"):
        LiveFeedConfig(ws_urll="wss://x")  # type: ignore[call-arg]


def test_config_is_frozen() -> None:
    config = LiveFeedConfig()
    with pytest.raises(ValidationError):
        config.poll_delay_s = 5.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "values",
    [
        {"ws_url": "https://stream.binance.com"},
        {"api_url": "ws://127.0.0.1:1"},
        {"backoff_base_s": 2.0, "backoff_cap_s": 1.0},
        {"ping_timeout_s": 0},
        {"max_connection_age_s": 25 * 3600},
        {"page_limit": 1001},
        {"page_limit": 1000, "max_pending_intervals": 1500},
    ],
)
def test_invalid_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LiveFeedConfig.model_validate(values)


def test_trailing_slash_is_dropped_from_ws_url() -> None:
    assert LiveFeedConfig(ws_url="ws://127.0.0.1:9/").ws_url == "ws://127.0.0.1:9"
