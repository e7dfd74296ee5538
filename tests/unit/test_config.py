"""Typed, frozen, strict config: TOML + TITAN_ env overrides, validated per mode."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from titan.config import DEFAULT_CONFIG_PATH, ConfigError, TitanConfig, load_config


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
    root = Path(__file__).resolve().parents[2]
    assert isinstance(load_config(root / name, env={}), TitanConfig)


def test_live_example_is_live_on_a_live_feed() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "config" / "live.example.toml", env={})
    assert (config.mode, config.feed.kind, config.engine.checkpoint_every) == (
        "live",
        "websocket",
        1,
    )
