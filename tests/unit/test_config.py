"""Typed, frozen, strict config: TOML + TITAN_ env overrides, validated per mode."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pydantic
import pytest

from titan.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    TitanConfig,
    embedded_default_path,
    load_config,
    shipped_config,
)

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "titan.toml"
    path.write_text(text)
    return path


def test_embedded_default_is_paper_on_replayed_sample() -> None:
    config = load_config(env={})
    assert DEFAULT_CONFIG_PATH.is_file()
    assert (config.mode, config.feed.kind) == ("paper", "replay")
    assert config.data.store == Path("backtests/data") and config.fusion.hidden_dim == 32


def test_config_is_frozen() -> None:
    config = load_config(env={})
    with pytest.raises(pydantic.ValidationError):
        config.fusion.enabled = False  # type: ignore[misc]


def test_unknown_key_error_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[fusion]\nhiden_dim = 64\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert "fusion.hiden_dim" in str(error.value) and str(path) in str(error.value)


def test_unknown_top_level_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'fuzion'"):
        load_config(write(tmp_path, "[fuzion]\nenabled = true\n"), env={})


def test_invalid_value_names_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fusion\.dropout"):
        load_config(write(tmp_path, "[fusion]\ndropout = 1.5\n"), env={})


def test_env_overrides_apply_with_types(tmp_path: Path) -> None:
    env = {
        "TITAN_FUSION__ENABLED": "false",
        "TITAN_DATA__SYMBOLS": '["SOL/USDT"]',
        "TITAN_MODE": "backtest",
    }
    config = load_config(write(tmp_path, ""), env=env)
    assert config.fusion.enabled is False and config.data.symbols == ("SOL/USDT",)
    assert config.mode == "backtest"


def test_unknown_env_key_error_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TITAN_FUSION__HIDDEN"):
        load_config(write(tmp_path, ""), env={"TITAN_FUSION__HIDDEN": "3"})


def test_secret_env_vars_are_not_config_keys(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={"TITAN_API_KEY": "k", "TITAN_API_SECRET": "s"})
    assert config.mode == "paper"


@pytest.mark.parametrize(
    "name",
    [
        "TITAN_VENV",  # dev.sh
        "TITAN_SHARED_DATA",  # tests/conftest.py, benchmarks
        "TITAN_API_PASSPHRASE",
        "TITAN_CONFIRM_LIVE",
        "TITAN_MQTT_SECRET",
        "TITAN_SOMETHING_ELSE",
        "TITAN_FUSION",  # a section name alone is not an override
    ],
)
def test_other_titan_variables_are_not_config(tmp_path: Path, name: str) -> None:
    config = load_config(write(tmp_path, ""), env={name: "/some/where", "TITAN_MODE": "paper"})
    assert config == load_config(write(tmp_path, ""), env={})


def test_stray_variables_do_not_break_the_embedded_default() -> None:
    env = {"TITAN_VENV": ".venv", "TITAN_SHARED_DATA": "/data", "TITAN_FUSION__ENABLED": "false"}
    assert load_config(env=env).fusion.enabled is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TITAN_FUZION__ENABLED", "true"),  # unknown section
        ("TITAN_OPS__MQTT__HOSTNAME", "broker"),  # unknown nested key
        ("TITAN_MODE__X", "1"),  # a scalar is not a section
        ("TITAN_DATA__SYMBOLS", "[1]"),  # invalid value inside a list
        ("TITAN_FUSION__", "1"),  # empty key
    ],
)
def test_bad_section_variables_are_errors_naming_the_variable(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=f"environment variable {name}"):
        load_config(write(tmp_path, ""), env={name: value})


def test_nested_env_override_reaches_deep_keys(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={"TITAN_OPS__MQTT__HOST": "broker"})
    assert config.ops.mqtt.host == "broker"


def test_command_line_overrides_win_over_env(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, ""),
        env={"TITAN_FUSION__HIDDEN_DIM": "8"},
        overrides={"fusion.hidden_dim": "16"},
    )
    assert config.fusion.hidden_dim == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('mode = "backtest"\n[feed]\nkind = "rest"\n', "backtest"),
        ('mode = "live"\n[feed]\nkind = "replay"\n', "live"),
        ('[data]\ntimeframe = "7x"\n', "timeframe"),
        ("[data]\nsymbols = []\n", "symbol"),
    ],
)
def test_mode_and_value_validation(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), env={})


def test_missing_file_and_bad_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "mode = \n"), env={})


@pytest.mark.parametrize("name", ["default.toml", "backtest.toml"])
def test_shipped_configs_are_package_data(name: str) -> None:
    """The default and backtest configs ship inside the package, so an installed `titan`
    finds them without a checkout."""
    shipped = resources.files("titan.config").joinpath(name)
    assert shipped.is_file() and shipped_config(name).read_bytes() == shipped.read_bytes()
    assert shipped.read_bytes() == (ROOT / "config" / name).read_bytes()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert name in project["tool"]["setuptools"]["package-data"]["titan.config"]
    assert embedded_default_path() == DEFAULT_CONFIG_PATH == shipped_config("default.toml")


def test_every_default_toml_key_is_known() -> None:
    """The embedded default spells out keys; each must exist in the typed config."""
    assert isinstance(load_config(DEFAULT_CONFIG_PATH, env={}), TitanConfig)


@pytest.mark.parametrize(
    "name",
    [
        "config/default.toml",
        "config/backtest.toml",
        "config/live.example.toml",
        "systemd/titan.toml.example",
    ],
)
def test_every_shipped_config_file_loads(name: str) -> None:
    assert isinstance(load_config(ROOT / name, env={}), TitanConfig)


def test_live_example_is_live_on_a_live_feed() -> None:
    config = load_config(ROOT / "config" / "live.example.toml", env={})
    assert (config.mode, config.feed.kind, config.engine.checkpoint_every) == (
        "live",
        "websocket",
        1,
    )
