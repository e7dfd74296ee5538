"""`[ops]` config: everything off or local by default, strict and frozen like every section."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from titan.config.ops import MqttConfig, MqttTlsConfig, OpsConfig


def test_defaults_turn_mqtt_and_metrics_off() -> None:
    ops = OpsConfig()
    assert not ops.mqtt.enabled and ops.mqtt.host is None
    assert ops.metrics.port is None
    assert ops.health.file == Path("health.json")
    assert ops.logs.max_bytes == 0 and ops.logs.sample == {}


def test_topics_live_under_prefix_and_instance() -> None:
    mqtt = MqttConfig(host="broker", prefix="home/titan", instance="eu-1")
    assert mqtt.enabled and mqtt.base == "home/titan/eu-1"


@pytest.mark.parametrize("instance", ["a/+", "#", "a b", "", "x/"])
def test_topic_wildcards_and_blanks_are_refused(instance: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        MqttConfig(instance=instance)


def test_unknown_keys_are_errors_and_sections_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra"):
        OpsConfig.model_validate({"mqtt": {"hots": "broker"}})
    ops = OpsConfig()
    with pytest.raises(pydantic.ValidationError):
        ops.mqtt.port = 1  # type: ignore[misc]


def test_client_certificate_needs_its_key() -> None:
    with pytest.raises(pydantic.ValidationError, match="go together"):
        MqttTlsConfig(enabled=True, cert_file=Path("client.crt"))


def test_negative_sampling_rates_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        OpsConfig.model_validate({"logs": {"sample": {"decision": -1}}})


def test_secrets_are_named_not_stored() -> None:
    fields = set(MqttConfig.model_fields)
    assert "password" not in fields and "secret" not in fields
    assert {"password_env", "password_file", "secret_env", "secret_file"} <= fields
