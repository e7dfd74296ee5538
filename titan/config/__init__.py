"""Typed, frozen, strict configuration: TOML file + `TITAN_...` environment overrides.

Loaded once at the entry point (`load_config`), then passed down. Unknown keys are errors
naming the key and the file (or environment variable) they came from. Which environment
variables are overrides is decided in `titan.config.env` (see docs/configuration.md).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from titan.config.base import ConfigError, Section
from titan.config.engine import EngineConfig
from titan.config.env import env_overrides, parse_value
from titan.config.features import FeaturesConfig
from titan.config.fusion import FusionConfig
from titan.config.live import LiveConfig
from titan.config.models import ModelsConfig
from titan.config.ops import OpsConfig
from titan.config.sections import DataConfig, FeedConfig, LoggingConfig, Mode, RuntimeConfig
from titan.config.trading import TradingConfig
from titan.config.training import TrainingConfig

__all__ = [
    "BACKTEST_CONFIG_PATH",
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
    "embedded_default_path",
    "load_config",
    "shipped_config",
]


def shipped_config(name: str) -> Path:
    """A config shipped in the package as `titan/config/<name>` (default.toml, backtest.toml).

    In a source checkout that file is a link to `config/<name>` (the one source of truth);
    a built wheel carries a copy (package data in pyproject.toml).
    """
    return Path(str(resources.files(__name__).joinpath(name))).resolve()


def embedded_default_path() -> Path:
    """The embedded default, `config/default.toml`, as shipped in the package."""
    return shipped_config("default.toml")


DEFAULT_CONFIG_PATH = embedded_default_path()
BACKTEST_CONFIG_PATH = shipped_config("backtest.toml")


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


# Top-level fields that are not sections: the only ones a plain `TITAN_<FIELD>` sets.
_TOP_LEVEL_FIELDS = frozenset(
    name
    for name, field in TitanConfig.model_fields.items()
    if not (isinstance(field.annotation, type) and issubclass(field.annotation, Section))
)


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
    for item in env_overrides(os.environ if env is None else env, _TOP_LEVEL_FIELDS):
        sources[item.key] = f"environment variable {item.variable}"
        _set_dotted(data, item.key, item.value, sources[item.key])
    for key, value in (overrides or {}).items():
        sources[key] = "command-line override"
        _set_dotted(data, key, parse_value(value), sources[key])
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


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted!r} from {source}: {part!r} is not a section")
        node = child
    node[leaf] = value


def _describe(exc: ValidationError, path: Path, sources: Mapping[str, str]) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        source = _source_of(key, sources, path)
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r} in {source}")
        else:
            lines.append(f"invalid value for {key!r} in {source}: {error['msg']}")
    return "; ".join(lines)


def _source_of(key: str, sources: Mapping[str, str], path: Path) -> str:
    """Where `key` was set: an override of the key, of a key under it or above it; else the file."""
    if key in sources:
        return sources[key]
    for other, source in sources.items():
        if other == key or other.startswith(f"{key}.") or key.startswith(f"{other}."):
            return source
    return str(path)
