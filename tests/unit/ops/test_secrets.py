"""API credentials: env or a 0600 file only, never shown in reprs, errors or log lines."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from titan.ops.logging import configure_logging, redact_text, register_secret
from titan.ops.secrets import Credentials, CredentialsError, load_api_credentials

KEY = "unit-test-api-key-6d1f0c"
SECRET = "unit-test-api-secret-93b7aa"


def _secrets_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_credentials_come_from_the_environment_first(tmp_path: Path) -> None:
    file = _secrets_file(tmp_path, 'api_key = "file-key-123456"\napi_secret = "file-secret-1234"\n')
    env = {"TITAN_API_KEY": KEY, "TITAN_API_SECRET": SECRET, "TITAN_API_PASSPHRASE": "pass-1234"}
    credentials = load_api_credentials(env, file)
    assert (credentials.api_key, credentials.api_secret, credentials.source) == (KEY, SECRET, "env")
    assert credentials.ccxt_params() == {"apiKey": KEY, "secret": SECRET, "password": "pass-1234"}


def test_credentials_from_a_0600_file(tmp_path: Path) -> None:
    file = _secrets_file(tmp_path, f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    credentials = load_api_credentials({}, file)
    assert (credentials.api_key, credentials.api_secret) == (KEY, SECRET)
    assert credentials.passphrase is None and credentials.source == f"file:{file}"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o666])
def test_group_or_world_readable_files_are_refused(tmp_path: Path, mode: int) -> None:
    file = _secrets_file(tmp_path, f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n', mode)
    with pytest.raises(CredentialsError, match="chmod 600") as raised:
        load_api_credentials({}, file)
    assert KEY not in str(raised.value) and SECRET not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'api_key = "{KEY}"\napi_secret = {SECRET}\n', "not valid UTF-8 TOML"),
        (f'api_key = "{KEY}"\n', "api_key and api_secret are required"),
        (f'api_key = "{KEY}"\napi_secret = "{SECRET}"\ntoken = "{SECRET}x"\n', "unknown keys"),
        (f'api_key = "{KEY}"\napi_secret = 12345678\n', "must be a string"),
        ('api_key = "short"\napi_secret = "short"\n', "at least 8"),
    ],
)
def test_malformed_files_are_refused_without_echoing_them(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(CredentialsError, match=message) as raised:
        load_api_credentials({}, _secrets_file(tmp_path, text))
    error = raised.value
    assert SECRET not in str(error) and error.__context__ is None and error.__cause__ is None


def test_missing_or_half_credentials_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="no API credentials"):
        load_api_credentials({}, None)
    with pytest.raises(CredentialsError, match="TITAN_API_SECRET must be set"):
        load_api_credentials({"TITAN_API_KEY": KEY}, None)
    with pytest.raises(CredentialsError, match="cannot open"):
        load_api_credentials({}, tmp_path / "absent.toml")
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(CredentialsError, match="not a regular file"):
        load_api_credentials({}, tmp_path / "dir")


def test_credentials_never_show_their_values() -> None:
    credentials = Credentials(KEY, SECRET, "pass-1234")
    for text in (repr(credentials), str(credentials), f"{credentials}", str([credentials])):
        assert KEY not in text and SECRET not in text and "pass-1234" not in text


def test_loaded_secrets_are_redacted_from_every_later_log_event() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    load_api_credentials({"TITAN_API_KEY": KEY, "TITAN_API_SECRET": SECRET}, None)
    log = structlog.get_logger("test")
    log.info("leak_attempt", url=f"https://x/?apiKey={KEY}", note=f"secret is {SECRET}")
    log.error("credentials", creds=Credentials(KEY, SECRET))
    text = stream.getvalue()
    assert KEY not in text and SECRET not in text
    assert json.loads(text.splitlines()[1])["note"] == "secret is ***"
    assert redact_text(f"{KEY}:{SECRET}") == "***:***"


class _Holder:
    """An object whose str and repr show what it holds (like a careless client object)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Holder({self.value})"


def _logged(emit: Callable[[structlog.typing.FilteringBoundLogger], None]) -> str:
    """What `emit` writes through the real configured pipeline (JSON lines)."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    register_secret(SECRET)
    emit(structlog.get_logger("test"))
    return stream.getvalue()


def test_secrets_in_tracebacks_are_redacted() -> None:
    def emit(log: structlog.typing.FilteringBoundLogger) -> None:
        try:
            raise ValueError(f"rejected signature {SECRET}")
        except ValueError as exc:
            log.exception("order_failed")
            log.error("order_failed_again", exc_info=exc)

    text = _logged(emit)
    events = [json.loads(line) for line in text.splitlines()]
    assert len(events) == 2 and all("Traceback" in e["exception"] for e in events)
    assert SECRET not in text and "rejected signature ***" in text


def test_secrets_in_nested_fields_are_redacted() -> None:
    def emit(log: structlog.typing.FilteringBoundLogger) -> None:
        log.info(
            "request",
            call={"headers": {"X-Sig": f"v1 {SECRET}"}, "args": [SECRET, (1, f"?s={SECRET}")]},
            batch=[{"note": {"deep": [SECRET]}}],
        )

    text = _logged(emit)
    event = json.loads(text)
    assert SECRET not in text
    assert event["call"]["args"] == ["***", [1, "?s=***"]]
    assert event["call"]["headers"] == {"X-Sig": "v1 ***"}


def test_secrets_in_exception_and_object_fields_are_redacted() -> None:
    def emit(log: structlog.typing.FilteringBoundLogger) -> None:
        log.warning("fetch_failed", error=ValueError(f"bad key {SECRET}"), client=_Holder(SECRET))
        log.warning("nested_failure", errors=[RuntimeError(SECRET)])

    text = _logged(emit)
    first = json.loads(text.splitlines()[0])
    assert SECRET not in text
    assert first["error"] == "ValueError: bad key ***" and first["client"] == "Holder(***)"


@pytest.mark.parametrize(
    "key", ["passphrase", "authorization", "token", "password", "X-Api-Key", "session_cookie"]
)
def test_secret_looking_keys_are_masked_at_any_depth(key: str) -> None:
    value = "unregistered-value-5e2a"

    def emit(log: structlog.typing.FilteringBoundLogger) -> None:
        log.info("headers", **{key: value}, nested={"inner": [{key: value}]})

    text = _logged(emit)
    event = json.loads(text)
    assert value not in text
    assert event[key] == "***" and event["nested"] == {"inner": [{key: "***"}]}
