"""API credentials: env or a 0600 file only, never shown in reprs, errors or log lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog

from titan.ops.logging import configure_logging, redact_text
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
