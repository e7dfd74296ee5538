"""`[ops]`: how operators watch and steer the daemon (MQTT, metrics, health, log streams).

Every part is off or local by default: MQTT only runs when `ops.mqtt.host` is set, the
Prometheus endpoint only when `ops.metrics.port` is set; the health file is always
written (it is a small JSON file in `runtime.state_dir`). Secrets (the broker password,
the command secret) never live in the config: it names the environment variable or the
0600 file they are read from.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from titan.config.base import Section

_TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9_\-.]+(/[A-Za-z0-9_\-.]+)*$")
LOG_LEVELS = ("debug", "info", "warning", "error")


class MqttTlsConfig(Section):
    enabled: bool = False
    ca_file: Path | None = Field(None, description="CA bundle (default: the system's)")
    cert_file: Path | None = Field(None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(None, description="client key (mutual TLS)")
    insecure: bool = Field(False, description="skip the hostname check (test brokers only)")

    @model_validator(mode="after")
    def _key_with_cert(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together")
        return self


class MqttConfig(Section):
    """Broker connection, topics and control. Off unless `host` is set."""

    host: str | None = Field(None, description="broker host; unset = MQTT off")
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = Field("titan", description="topics: <prefix>/<instance>/...")
    instance: str = Field("default", description="this daemon's name in topics")
    client_id: str | None = Field(None, description="default: titan-<instance>")
    username: str | None = None
    password_env: str = Field("TITAN_MQTT_PASSWORD", description="env var with the password")
    password_file: Path | None = Field(None, description="0600 file with the password")
    tls: MqttTlsConfig = Field(default_factory=MqttTlsConfig)
    keepalive_s: int = Field(30, ge=5)
    queue_size: int = Field(10_000, ge=16, description="bounded outgoing queue (drops beyond)")
    heartbeat_s: float = Field(15.0, gt=0)
    stats_s: float = Field(60.0, gt=0, description="period of the `stats` topic")
    signals: bool = Field(True, description="publish signal/<symbol> for every decision")
    decisions: bool = Field(True, description="publish decision/<symbol> (full detail)")
    control: bool = Field(True, description="accept commands on <base>/control[/<command>]")
    secret_env: str = Field("TITAN_MQTT_SECRET", description="env var with the command secret")
    secret_file: Path | None = Field(None, description="0600 file with the command secret")
    max_command_age_s: float = Field(300.0, gt=0, description="reject older commands (by ts)")
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    flush_timeout_s: float = Field(5.0, ge=0, description="shutdown: wait this long to drain")

    @field_validator("prefix", "instance")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        if not _TOPIC_LEVEL.match(value):
            raise ValueError("letters, digits, '_', '-', '.' and '/' between levels only")
        return value

    @property
    def enabled(self) -> bool:
        return self.host is not None

    @property
    def base(self) -> str:
        """Topic root of this instance: `<prefix>/<instance>`."""
        return f"{self.prefix}/{self.instance}"


class MetricsConfig(Section):
    """Prometheus text exposition on http://<host>:<port>/metrics (and /health)."""

    port: int | None = Field(None, ge=0, le=65535, description="unset = no HTTP server")
    host: str = Field("127.0.0.1", description="bind address")


class HealthConfig(Section):
    file: Path = Field(Path("health.json"), description="relative to runtime.state_dir")
    write_every_s: float = Field(1.0, gt=0, description="at most one write per this period")
    max_age_s: float | None = Field(
        None, gt=0, description="stale after this; default 3 intervals + 60 s"
    )


class SystemdConfig(Section):
    watchdog_stall_s: float | None = Field(
        None, gt=0, description="also stop the watchdog when no interval for this long"
    )


class LogStreamConfig(Section):
    """Rotation of `logging.file` and per-event sampling (warnings and errors never sampled)."""

    max_bytes: int = Field(0, ge=0, description="rotate logging.file at this size; 0 = never")
    backups: int = Field(5, ge=1, description="rotated files kept: <file>.1 ... <file>.N")
    sample: dict[str, int] = Field(
        default_factory=dict, description="event -> keep 1 in N per symbol (0 = drop all)"
    )

    @field_validator("sample")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        if any(n < 0 for n in value.values()):
            raise ValueError("sampling rates must be >= 0")
        return value


class OpsConfig(Section):
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    systemd: SystemdConfig = Field(default_factory=SystemdConfig)
    logs: LogStreamConfig = Field(default_factory=LogStreamConfig)
