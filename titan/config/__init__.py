"""Typed, frozen, strict configuration: TOML file + `TITAN_...` environment overrides.

Loaded once at the entry point (`load_config`), then passed down. Unknown keys are errors
naming the key and the file (or environment variable) they came from.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from titan.config.base import Section
from titan.config.engine import EngineConfig
from titan.config.features import FeaturesConfig
from titan.config.fusion import FusionConfig
from titan.config.live import LiveConfig
from titan.config.models import ModelsConfig
from titan.config.ops import OpsConfig
from titan.config.sections import DataConfig, FeedConfig, LoggingConfig, Mode, RuntimeConfig
from titan.config.trading import TradingConfig
from titan.config.training import TrainingConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ConfigError",
    "DataConfig",
    "EngineConfig",
    "FeaturesConfig",
    "FeedConfig",
    "FusionConfig",
    "LiveConfig",
    "LoggingConfig",
    "Mode",
    "ModelsConfig",
    "OpsConfig",
    "RuntimeConfig",
    "TitanConfig",
    "TradingConfig",
    "TrainingConfig",
    "load_config",
]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "default.toml"
ENV_PREFIX = "TITAN_"


class ConfigError(ValueError):
    """A configuration problem, with the offending key and its source in the message."""


class TitanConfig(Section):
    mode: Mode = "paper"
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    trading: TradingConfig = Field(default_factory=TradingConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _valid_for_mode(self) -> TitanConfig:
        if self.mode == "backtest" and self.feed.kind != "replay":
            raise ValueError("mode 'backtest' needs feed.kind = 'replay'")
        if self.mode == "live" and self.feed.kind == "replay":
            raise ValueError("mode 'live' cannot trade on a replay feed (feed.kind = 'replay')")
        return self


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> TitanConfig:
    """Load `path` (default: the embedded default), apply env and `key=value` overrides."""
    path = path or DEFAULT_CONFIG_PATH
    data = _read_toml(path)
    sources: dict[str, str] = {}
    env_items = _env_overrides(os.environ if env is None else env)
    for key, value in env_items.items():
        _set_dotted(data, key, value)
        sources[key] = f"environment variable {ENV_PREFIX}{key.upper().replace('.', '__')}"
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, _parse_value(value))
        sources[key] = "command-line override"
    try:
        return TitanConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, sources)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """`TITAN_FUSION__ENABLED=false` -> {"fusion.enabled": False}; JSON-parsed where possible."""
    found = {}
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and name not in _ENV_NOT_CONFIG:
            key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
            found[key] = _parse_value(value)
    return found


# Environment variables with the prefix that are not config keys (secrets, switches).
_ENV_NOT_CONFIG = frozenset(
    {
        "TITAN_API_KEY",
        "TITAN_API_SECRET",
        "TITAN_API_PASSPHRASE",
        "TITAN_CONFIRM_LIVE",
        "TITAN_MQTT_PASSWORD",
        "TITAN_MQTT_SECRET",
    }
)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted!r}: {part!r} is not a section")
        node = child
    node[leaf] = value


def _describe(exc: ValidationError, path: Path, sources: Mapping[str, str]) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        source = sources.get(key, str(path))
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r} in {source}")
        else:
            lines.append(f"invalid value for {key!r} in {source}: {error['msg']}")
    return "; ".join(lines)
