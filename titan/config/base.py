"""The strict, frozen base class every config section derives from, and the config error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A configuration problem, with the offending key and its source in the message."""


class Section(BaseModel):
    """A config section: unknown keys are errors, values are immutable after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
