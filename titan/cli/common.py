"""Pieces every command shares: the Typer app, config loading, logging set-up."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from titan.config import ConfigError, TitanConfig, load_config
from titan.ops.logging import configure_logging

app = typer.Typer(
    help="Titan: a streaming live-trading daemon with an online-learning fusion meta-model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: config/default.toml; for backtest and history: "
        "config/backtest.toml).",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a config key, e.g. --set fusion.enabled=false (repeatable)."
    ),
]


def parse_overrides(pairs: list[str] | None) -> dict[str, str]:
    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        overrides[key.strip()] = value.strip()
    return overrides


def load_or_exit(path: Path | None, overrides: dict[str, str] | None = None) -> TitanConfig:
    """Load the config, or print the error (naming key and file) and exit with status 2."""
    try:
        return load_config(path, overrides=overrides)
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


def setup_logging(config: TitanConfig, to_stderr: bool = True) -> None:
    """Logs of data commands go to stderr so their stdout stays the result."""
    logging, logs = config.logging, config.ops.logs
    stream = sys.stderr if to_stderr or logging.stream == "stderr" else sys.stdout
    configure_logging(
        logging.level,
        logging.format,
        stream,
        logging.file,
        max_bytes=logs.max_bytes,
        backups=logs.backups,
        sample=logs.sample,
    )
