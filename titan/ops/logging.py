"""structlog configuration: done once, at the entry point.

JSON lines when the stream is not a terminal (journald, files, pipes), readable console
output on a terminal. Events carry fields, never formatted strings. Every event passes
through `redact_secrets`, the last step before rendering (after the traceback and stack
text are formatted), so registered secret values and secret-looking keys never reach a
log line: not in nested fields, exception objects or tracebacks either.

Log streams for a long-running daemon:
- an optional copy in a file, rotated by size (`<file>.1` ... `<file>.<backups>`);
- per-event sampling (`sample={"decision": 100}` keeps 1 in 100 per event and symbol;
  warnings and errors are never sampled), so a 100-symbol 1m daemon does not flood
  the journal;
- the level can change at runtime (`set_log_level`, e.g. from an MQTT command);
- event listeners (`add_event_listener`) see every event, whatever the level and before
  sampling: the Prometheus metrics count rejects and reconnects this way. While a
  listener is registered the level is applied by a processor after the listeners;
  without one the bound logger drops low events before any processing (cheapest).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import structlog

_SECRET_KEY_PARTS = (
    "secret", "password", "passwd", "passphrase", "api_key", "apikey", "token",
    "private_key", "authorization", "credential", "cookie",
)  # fmt: skip
_REDACTED = "***"
_MAX_DEPTH = 8
_secret_values: set[str] = set()
_UNSAMPLED = frozenset({"warning", "error", "critical", "exception"})
_METHOD_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
                  "error": logging.ERROR, "critical": logging.CRITICAL}  # fmt: skip
EventListener = Callable[[Mapping[str, Any]], None]
_listeners: list[EventListener] = []


@dataclass
class _Level:
    name: str = "info"
    number: int = logging.INFO


_level = _Level()


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


def is_secret_key(key: object) -> bool:
    """True for field names that look like they hold a secret (`X-Api-Key`, `passphrase`)."""
    name = str(key).lower().replace("-", "_")
    return any(part in name for part in _SECRET_KEY_PARTS)


def redact_value(value: Any, depth: int = 0) -> Any:
    """`value` with secrets masked: in strings, containers (recursively) and objects."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < _MAX_DEPTH and isinstance(value, Mapping):
        return {
            redact_value(k, depth + 1): _redact_field(k, v, depth + 1) for k, v in value.items()
        }
    if depth < _MAX_DEPTH and isinstance(value, list | tuple):
        items = [redact_value(item, depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return _redact_object(value)


def _redact_field(key: object, value: Any, depth: int) -> Any:
    return _REDACTED if is_secret_key(key) else redact_value(value, depth)


def _redact_object(value: Any) -> Any:
    """An exception or other object as redacted text when its str or repr shows a secret."""
    if not _secret_values:
        return value
    try:
        text = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else None
        shown = repr(value)  # what the renderers print for an object
        leaks = _shows_secret(shown) or _shows_secret(str(value))
    except Exception:  # a broken __repr__/__str__ must not break logging
        return f"<unprintable {type(value).__name__}>"
    return redact_text(text or shown) if leaks else value


def _shows_secret(text: str) -> bool:
    return any(secret in text for secret in _secret_values)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor (the last before the renderer): mask secret keys and values."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_field(key, value, 0)
    return event_dict


# --------------------------------------------------------------------------- strict JSON


def json_safe(value: Any) -> Any:
    """`value` with NaN/inf floats replaced by None (strict JSON for jq and MQTT consumers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def strict_json(value: Any, **kwargs: Any) -> str:
    """json.dumps that never writes NaN/Infinity (they become null)."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(json_safe(value), **kwargs)


# --------------------------------------------------------------------------- listeners


def add_event_listener(listener: EventListener) -> None:
    """Call `listener(event_dict)` for every event, whatever the log level (see above)."""
    if listener not in _listeners:
        _listeners.append(listener)
    _refilter()


def remove_event_listener(listener: EventListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)
    _refilter()


def install_listener_processor() -> None:
    """Make sure listeners see events even when `configure_logging` was not called."""
    processors = list(structlog.get_config()["processors"])
    if _notify_listeners in processors:
        return
    add_level = structlog.processors.add_log_level
    at = processors.index(add_level) + 1 if add_level in processors else 0
    processors.insert(at, _notify_listeners)
    structlog.configure(processors=processors)


def _notify_listeners(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for listener in list(_listeners):
        try:
            listener(event_dict)
        except Exception:  # a metrics bug must never break logging
            continue
    return event_dict


# --------------------------------------------------------------------------- sampling


class EventSampler:
    """structlog processor: keep 1 in N of an event (per symbol) below warning level.

    `rates` maps event name -> N (1 keeps all, 0 drops all). Kept events carry
    `sampled=N` so readers know each line stands for N.
    """

    MAX_KEYS = 10_000

    def __init__(self, rates: Mapping[str, int]) -> None:
        self.rates = dict(rates)
        self._counts: dict[tuple[str, str], int] = {}

    def __call__(
        self, _logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        rate = self.rates.get(str(event_dict.get("event")))
        if rate is None or rate == 1 or method in _UNSAMPLED:
            return event_dict
        if rate == 0:
            raise structlog.DropEvent
        key = (str(event_dict.get("event")), str(event_dict.get("symbol", "")))
        if len(self._counts) >= self.MAX_KEYS:
            self._counts.clear()
        count = self._counts.get(key, 0)
        self._counts[key] = count + 1
        if count % rate:
            raise structlog.DropEvent
        event_dict["sampled"] = rate
        return event_dict


# --------------------------------------------------------------------------- outputs


class RotatingFile:
    """An append-only text file rotated by size: `path` -> `path.1` -> ... -> `path.N`."""

    def __init__(self, path: Path, max_bytes: int = 0, backups: int = 5) -> None:
        self.path, self.max_bytes, self.backups = Path(path), max_bytes, max(1, backups)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._size = self._file.tell()

    def write(self, text: str) -> None:
        size = len(text.encode("utf-8"))
        if self.max_bytes and self._size and self._size + size > self.max_bytes:
            self.rollover()
        self._file.write(text)
        self._size += size

    def flush(self) -> None:
        self._file.flush()

    def rollover(self) -> None:
        self._file.close()
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.path.exists():
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("a", encoding="utf-8")
        self._size = 0

    def close(self) -> None:
        self._file.close()


class _Tee:
    """A file-like that writes each log line to a stream and, optionally, a file."""

    def __init__(self, stream: IO[str], file: RotatingFile | None) -> None:
        self.stream, self.file = stream, file

    def write(self, text: str) -> None:
        self.stream.write(text)
        if self.file is not None:
            self.file.write(text)

    def flush(self) -> None:
        self.stream.flush()
        if self.file is not None:
            self.file.flush()


# --------------------------------------------------------------------------- set-up


def _level_number(level: str) -> int:
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def _filter_level(
    _logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop events below the current level (after the listeners)."""
    if _METHOD_LEVELS.get(method, logging.CRITICAL) < _level.number:
        raise structlog.DropEvent
    return event_dict


def _owns_pipeline() -> bool:
    return _filter_level in structlog.get_config()["processors"]


def _apply_level() -> None:
    """Filter in the bound logger (cheapest) unless listeners need every event first."""
    floor = logging.NOTSET if _listeners and _owns_pipeline() else _level.number
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(floor))


def _refilter() -> None:
    if _owns_pipeline():
        _apply_level()


def set_log_level(level: str) -> None:
    """Change the level of every logger at runtime (module-level loggers included)."""
    _level.number, _level.name = _level_number(level), level.lower()
    _apply_level()


def current_log_level() -> str:
    return _level.name


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: IO[str] | None = None,
    file: Path | None = None,
    *,
    max_bytes: int = 0,
    backups: int = 5,
    sample: Mapping[str, int] | None = None,
) -> None:
    """Configure structlog for the whole process (see the module docstring)."""
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=strict_json, sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    log_file = RotatingFile(file, max_bytes, backups) if file is not None else None
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _notify_listeners,
            _filter_level,
            EventSampler(sample or {}),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,  # last: sees the traceback and stack text too
            renderer,
        ],
        logger_factory=structlog.WriteLoggerFactory(file=_Tee(stream, log_file)),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    set_log_level(level)
