"""Exchange API credentials: only from the environment or a 0600 secrets file.

Sources, in order:

1. the environment: TITAN_API_KEY and TITAN_API_SECRET (both or neither), optionally
   TITAN_API_PASSPHRASE;
2. a secrets file (TOML: `api_key`, `api_secret`, optional `passphrase`) that must be a
   regular file readable by its owner only (no group or world bits; 0600 or 0400).

Every value is registered with `titan.ops.logging.register_secret`, so no later log event
shows it, and `Credentials` never shows it in its repr. Errors name the source and the
problem, never the contents of the file.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from titan.ops.logging import register_secret

log = structlog.get_logger(__name__)

ENV_KEY = "TITAN_API_KEY"
ENV_SECRET = "TITAN_API_SECRET"
ENV_PASSPHRASE = "TITAN_API_PASSPHRASE"
FILE_KEYS = frozenset({"api_key", "api_secret", "passphrase"})
MIN_LENGTH = 8  # shorter values cannot be real keys, nor be redacted safely


class CredentialsError(ValueError):
    """Missing, partial, malformed or unsafely stored credentials (never shows values)."""


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    api_key: str
    api_secret: str
    passphrase: str | None = None
    source: str = "env"

    def __repr__(self) -> str:
        extra = ", passphrase='***'" if self.passphrase else ""
        return f"Credentials(source={self.source!r}, api_key='***', api_secret='***'{extra})"

    __str__ = __repr__

    def ccxt_params(self) -> dict[str, str]:
        """The constructor arguments ccxt expects (apiKey, secret, password)."""
        params = {"apiKey": self.api_key, "secret": self.api_secret}
        if self.passphrase:
            params["password"] = self.passphrase
        return params


def load_api_credentials(env: Mapping[str, str], secrets_file: Path | None) -> Credentials:
    """Credentials from `env`, else from `secrets_file`; registered for redaction."""
    if env.get(ENV_KEY) or env.get(ENV_SECRET):
        credentials = _from_env(env)
    elif secrets_file is not None:
        credentials = _from_file(secrets_file)
    else:
        raise CredentialsError(
            f"no API credentials: set {ENV_KEY} and {ENV_SECRET}, "
            "or live.secrets_file (a TOML file with mode 0600)"
        )
    for value in (credentials.api_key, credentials.api_secret, credentials.passphrase):
        register_secret(value)
    log.info("credentials_loaded", source=credentials.source)
    return credentials


def _from_env(env: Mapping[str, str]) -> Credentials:
    key, secret = env.get(ENV_KEY, "").strip(), env.get(ENV_SECRET, "").strip()
    missing = [name for name, value in ((ENV_KEY, key), (ENV_SECRET, secret)) if not value]
    if missing:
        raise CredentialsError(f"{' and '.join(missing)} must be set too (env holds half a key)")
    passphrase = env.get(ENV_PASSPHRASE, "").strip() or None
    return _checked(key, secret, passphrase, "env")


def _from_file(path: Path) -> Credentials:
    data = _parse(path, _read_private(path))
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise CredentialsError(f"secrets file {path}: unknown keys {unknown}")
    values = {name: data.get(name) for name in FILE_KEYS}
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            raise CredentialsError(f"secrets file {path}: {name} must be a string")
    key, secret = (values["api_key"] or "").strip(), (values["api_secret"] or "").strip()
    if not key or not secret:
        raise CredentialsError(f"secrets file {path}: api_key and api_secret are required")
    return _checked(key, secret, (values["passphrase"] or "").strip() or None, f"file:{path}")


def _read_private(path: Path) -> bytes:
    """The file's bytes, refusing anything but a regular file no one else can read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise CredentialsError(f"secrets file {path}: cannot open ({exc.strerror})") from None
    try:
        _check_private(path, os.fstat(fd))
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)


def _check_private(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"secrets file {path}: not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise CredentialsError(
            f"secrets file {path} has mode {mode:04o}: it must not be readable by group "
            f"or others (chmod 600 {path})"
        )


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        error = CredentialsError(f"secrets file {path}: not valid UTF-8 TOML")
    raise error  # raised outside the handler: no chained exception quoting the contents


def _checked(key: str, secret: str, passphrase: str | None, source: str) -> Credentials:
    if len(key) < MIN_LENGTH or len(secret) < MIN_LENGTH:
        raise CredentialsError(
            f"credentials from {source}: api key and secret must be at least "
            f"{MIN_LENGTH} characters"
        )
    return Credentials(key, secret, passphrase, source)
