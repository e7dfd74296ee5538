"""`titan backtest --compare`, the `history` alias of the design documents and the
per-interval `interval` log event, on short ranges of the bundled sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tests.integration.engine_setup import SAMPLE, SMALL
from titan.cli import app
from titan.engine.ledger import Ledger
from titan.evaluation.runs import last_counters

SETTINGS = {k: v for k, v in SMALL.items() if not k.startswith(("feed.", "data."))}
RANGE = ["--start", "2025-05-04T16:00:00", "--end", "2025-05-05T04:00:00"]
HISTORY = ["history", "--symbol", "BTCUSDT", "--interval", "1", "--hours", "24"]
LAST_BTC_MS = 1748964660000  # the last stored BTC candle (see backtests/data/SOURCES.md)


def _set(pairs: dict[str, str]) -> list[str]:
    return [arg for key, value in pairs.items() for arg in ("--set", f"{key}={value}")]


def _backtest(tmp_path: Path, *extra: str) -> list[str]:
    args = ["backtest", "--store", str(SAMPLE), "--symbol", "BTC/USDT", *RANGE]
    return [*args, *_set({**SETTINGS, "engine.reports_dir": str(tmp_path / "reports")}), *extra]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Run in `tmp_path` (the commands write state/ under the working directory)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_backtest_compare_prints_both_runs_side_by_side(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, _backtest(tmp_path, "--compare", "fusion.enabled=false"))
    assert result.exit_code == 0, result.output
    assert "side by side" in result.output
    assert "baseline (fusion.enabled=false)" in result.output
    for metric in ("accuracy", "log_loss", "brier", "roc_auc", "pnl", "trades", "win_rate"):
        assert any(line.strip("│ ").startswith(metric) for line in result.output.splitlines())
    (root,) = (tmp_path / "reports").glob("backtest-*")
    for name in ("baseline", "fusion"):
        report = (root / name / "report.md").read_text()
        assert "## Per week" in report and "| majority class |" in report
    ledgers = {p.parent.name: Ledger(p) for p in (tmp_path / "state").rglob("ledger.db")}
    assert ledgers["baseline"].frame("predictions")["fused"].sum() == 0
    assert ledgers["fusion"].frame("predictions")["fused"].sum() > 0


def _history_config(tmp_path: Path) -> Path:
    lines = [
        'mode = "backtest"',
        f'data.store = "{SAMPLE}"',
        'data.exchange = "binanceusdm"',
        'feed.kind = "replay"',
        f'engine.reports_dir = "{tmp_path / "reports"}"',
        *(f"{key} = {value}" for key, value in SETTINGS.items() if value.isdigit()),
        'logging.level = "warning"',
        "trading.min_edge = 0.0  # trade on any edge and size: the warm-up trades too",
        "trading.min_order_notional = 0.01",
    ]
    path = tmp_path / "history.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _table_value(report: str, key: str) -> str:
    line = next(x for x in report.splitlines() if x.startswith(f"| {key} |"))
    return line.split("|")[2].strip()


def _check_history_run(tmp_path: Path) -> None:
    """The report scores the last 24 h only, trades counted in that window alone."""
    (report_path,) = (tmp_path / "reports").glob("history-*/history/report.md")
    report = report_path.read_text()
    assert "Window: the evaluated period only, 2025-06-02 15:32 UTC to 2025-06-03 15:31" in report
    (ledger_path,) = (tmp_path / "state").rglob("ledger.db")
    equity = Ledger(ledger_path).frame("equity")
    start = LAST_BTC_MS - 24 * 3_600_000 + 60_000
    warmup = last_counters(equity.filter(pl.col("ts") < start))
    total = last_counters(equity)
    assert warmup.trades > 0  # the warm-up traded: those round trips must not count
    assert int(_table_value(report, "warmup_trades")) == warmup.trades
    assert int(_table_value(report, "trades")) == total.trades - warmup.trades
    assert int(_table_value(report, "intervals")) == 24 * 60
    fusion = next(x for x in report.splitlines() if x.startswith("| fusion |")).split("|")
    assert int(fusion[2]) + int(fusion[3]) == 24 * 60 - 1  # resolved: all but the last


def test_history_alias_replays_the_last_24_hours(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, [*HISTORY, "--config", str(_history_config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "last 24 h of BTCUSDT (after warm-up)" in result.output
    _check_history_run(tmp_path)


def test_python_m_titan_cli_history(tmp_path: Path) -> None:
    """The design documents' spelling, as a subprocess."""
    config = _history_config(tmp_path)
    env = {**os.environ, "COLUMNS": "200"}
    command = [sys.executable, "-m", "titan.cli", *HISTORY, "--config", str(config)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report:" in done.stdout
    _check_history_run(tmp_path)


def test_backtest_logs_one_interval_event_per_interval(runner: CliRunner, tmp_path: Path) -> None:
    """The JSON log stream (stderr) carries an `interval` event for every interval."""
    logs = {"logging.level": "info", "logging.format": "json", "engine.log_every": "1"}
    result = runner.invoke(app, _backtest(tmp_path, *_set(logs)))
    assert result.exit_code == 0, result.output
    events = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    intervals = [e for e in events if e["event"] == "interval"]
    assert len(intervals) == 12 * 60  # 16:00 .. 03:59
    assert [e["ts"] for e in intervals] == sorted({e["ts"] for e in intervals})
    assert all(e["equity"] > 0 and e["level"] == "info" for e in intervals)
    decided = [e for e in intervals if e["decisions"]]
    assert decided and set(decided[-1]["decisions"]["BTC/USDT"]) == {"p", "action"}
