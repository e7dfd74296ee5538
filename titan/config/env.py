"""Which `TITAN_*` environment variables are config overrides, and which key each one sets.

The rule (docs/configuration.md):

- `TITAN_<SECTION>__<KEY>` (sections and keys joined by a double underscore, any depth, e.g.
  `TITAN_FUSION__ENABLED`, `TITAN_OPS__MQTT__HOST`) overrides `section.key`; an unknown
  section or key is an error naming the variable;
- `TITAN_<FIELD>` overrides a top-level field that is not a section (e.g. `TITAN_MODE`);
- every other `TITAN_*` variable (`TITAN_API_KEY`, `TITAN_CONFIRM_LIVE`, `TITAN_VENV`,
  `TITAN_SHARED_DATA`, ...) is not config and is ignored here.

Values are parsed as JSON where possible (`false`, `3`, `["SOL/USDT"]`), else kept as text.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from titan.config.base import ConfigError

ENV_PREFIX = "TITAN_"
SEPARATOR = "__"


@dataclass(frozen=True, slots=True)
class EnvOverride:
    """One config override from the environment: `variable` sets the dotted `key`."""

    variable: str
    key: str
    value: Any


def env_overrides(env: Mapping[str, str], top_level: Collection[str]) -> list[EnvOverride]:
    """The config overrides among `env`, in name order; other variables are skipped."""
    found = []
    for name in sorted(env):
        key = config_key(name, top_level)
        if key is not None:
            found.append(EnvOverride(name, key, parse_value(env[name])))
    return found


def config_key(name: str, top_level: Collection[str]) -> str | None:
    """`TITAN_FUSION__ENABLED` -> "fusion.enabled", `TITAN_MODE` -> "mode", else None."""
    if not name.startswith(ENV_PREFIX):
        return None
    rest = name[len(ENV_PREFIX) :].lower()
    if SEPARATOR not in rest:
        return rest if rest in top_level else None
    parts = rest.split(SEPARATOR)
    if not all(parts):
        raise ConfigError(f"environment variable {name}: empty section or key name")
    return ".".join(parts)


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
