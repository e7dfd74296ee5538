"""The `titan` command line: data import / info, features, and `--help` everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from titan.cli import app
from titan.features import FEATURE_NAMES

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000
T0 = 1_700_000_040_000
ROWS = 120


def candles(n: int) -> list[list[float]]:
    return [
        [T0 + i * MINUTE, 100.0 + i % 7, 102.0 + i % 7, 99.0 + i % 7, 101.0 + i % 7, 5.0 + i % 3]
        for i in range(n)
    ]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A titan-named CSV (BTC) and a freqtrade json (ETH) with the same candles."""
    csv = tmp_path / "in" / "binance_BTCUSDT_1m.csv"
    csv.parent.mkdir()
    lines = [
        "timestamp,open,high,low,close,volume",
        *(",".join(map(str, r)) for r in candles(ROWS)),
    ]
    csv.write_text("\n".join(lines))
    freqtrade = tmp_path / "in" / "binance" / "ETH_USDT-1m.json"
    freqtrade.parent.mkdir()
    freqtrade.write_text(json.dumps(candles(ROWS)))
    return csv, freqtrade


def test_data_import_csv_and_json_then_info(tmp_path: Path, files: tuple[Path, Path]) -> None:
    store = tmp_path / "store"
    out = invoke("data", "import", *map(str, files), "--store", str(store))
    assert out.count(f"{ROWS} rows read, {ROWS} stored") == 2
    assert sorted(p.name for p in store.iterdir()) == [
        "binance_BTCUSDT_1m.parquet",
        "binance_ETHUSDT_1m.parquet",
    ]
    info = invoke("data", "info", "--store", str(store))
    assert "BTC" in info and "ETH" in info and str(ROWS) in info


def test_data_import_of_an_unreadable_file_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "binance_BTCUSDT_1m.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(app, ["data", "import", str(bad), "--store", str(tmp_path)])
    assert result.exit_code == 1 and "time column" in result.output


def test_features_writes_parquet(tmp_path: Path, files: tuple[Path, Path]) -> None:
    store, out = tmp_path / "store", tmp_path / "out" / "features.parquet"
    invoke("data", "import", str(files[0]), "--store", str(store))
    args = ["--symbol", "BTC/USDT", "--exchange", "binance", "--timeframe", "1m"]
    invoke("features", *args, "--store", str(store), "--out", str(out))
    table = pl.read_parquet(out)
    assert table.height == ROWS and set(FEATURE_NAMES) <= set(table.columns)


def test_features_without_stored_candles_exits_1(tmp_path: Path) -> None:
    args = ["features", "--symbol", "NOPE/USDT", "--store", str(tmp_path), "--out", "x.parquet"]
    assert CliRunner().invoke(app, args).exit_code == 1


def command_paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the CLI, as argument tuples."""
    paths = [prefix]
    if isinstance(command, typer.core.TyperGroup):
        for name, sub in sorted(command.commands.items()):
            paths.extend(command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = command_paths(typer.main.get_command(app))


def test_the_cli_has_the_documented_commands() -> None:
    assert {("data", "import"), ("data", "fetch"), ("data", "info"), ("features",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "titan")
def test_help_on_every_command(path: tuple[str, ...]) -> None:
    out = invoke(*path, "--help")
    assert "Usage:" in out and "--help" in out


def test_python_dash_m_titan_help() -> None:
    env = {**os.environ, "TITAN_VENV": ".venv", "TITAN_SHARED_DATA": "/nowhere"}
    result = subprocess.run(
        [sys.executable, "-m", "titan", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "data" in result.stdout
