"""structlog configuration: done once, at the entry point.

JSON lines when the stream is not a terminal (journald, files, pipes), readable console
output on a terminal. Events carry fields, never formatted strings. Every event passes
through `redact_secrets`, so registered secret values and secret-looking keys never
reach a log line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import IO, Any, Literal

import structlog

_SECRET_KEY_PARTS = ("secret", "password", "passwd", "api_key", "apikey", "token", "private_key")
_REDACTED = "***"
_secret_values: set[str] = set()


def register_secret(value: str | None) -> None:
    """Redact `value` wherever it appears in any later log event (min. 4 characters)."""
    if value and len(value) >= 4:
        _secret_values.add(value)


def redact_text(text: str) -> str:
    """`text` with every registered secret value replaced."""
    for secret in _secret_values:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking keys and registered secret values."""
    for key, value in list(event_dict.items()):
        if any(part in key.lower() for part in _SECRET_KEY_PARTS):
            event_dict[key] = _REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


class _Tee:
    """A file-like that writes each log line to a stream and, optionally, a file."""

    def __init__(self, stream: IO[str], file: IO[str] | None) -> None:
        self.stream, self.file = stream, file

    def write(self, text: str) -> None:
        self.stream.write(text)
        if self.file is not None:
            self.file.write(text)

    def flush(self) -> None:
        self.stream.flush()
        if self.file is not None:
            self.file.flush()


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: IO[str] | None = None,
    file: Path | None = None,
) -> None:
    """Configure structlog for the whole process."""
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    log_file = file.open("a", encoding="utf-8") if file is not None else None
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=_Tee(stream, log_file)),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
