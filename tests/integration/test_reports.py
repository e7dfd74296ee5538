"""Run reports: `report.md` holds the whole-run and per-week tables for every competitor
(ties excluded), the trading window it covers, and valid PNG plots."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from titan.engine.ledger import EquityRow, Ledger, Outcome, Prediction
from titan.evaluation import forecast_report
from titan.evaluation.report import WEEKLY_METRICS, fmt, write_report

MIN = 60_000
NAMES = ("trend_vic", "oscillator")
COMPETITORS = ("fusion", "simple average", "majority class", *NAMES)
# Sunday 2025-05-04 22:00 UTC (ISO week 18) to Monday 02:00 (week 19)
START = int(datetime(2025, 5, 4, 22, tzinfo=UTC).timestamp() * 1000)
N = 240
EVALUATE_FROM = START + 60 * MIN
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _predictions(rng: np.random.Generator) -> list[Prediction]:
    probs = rng.uniform(0.2, 0.8, size=(N, 2))
    fusion = np.clip(probs.mean(axis=1) + rng.normal(0, 0.05, N), 0, 1)
    return [
        Prediction(
            "BTC/USDT",
            START + i * MIN,
            START + (i + 1) * MIN,
            100.0,
            float(fusion[i]),
            float(probs[i].mean()),
            0.5,
            i >= 30,
            "hold",
            {"p": probs[i].tolist()},
            (0.5, 0.5),
        )
        for i in range(N)
    ]


def _equity(rng: np.random.Generator) -> list[EquityRow]:
    values = 10_000 * np.cumprod(1 + rng.normal(0, 1e-4, N))
    rows = []
    for i in range(N):
        state = {"trade_count": i // 20, "win_count": i // 40, "fees_paid": i / 100}
        rows.append(EquityRow(START + i * MIN, float(values[i]), 0.0, 0.3, state))
    return rows


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """A synthetic run over two ISO weeks, with ties among the outcomes."""
    rng = np.random.default_rng(7)
    ledger = Ledger(tmp_path_factory.mktemp("run") / "ledger.db")
    ids = ledger.add_predictions(_predictions(rng))
    outcomes: list[Outcome] = list(rng.choice(["UP", "DOWN", "TIE"], N - 1, p=[0.47, 0.47, 0.06]))
    ledger.resolve_many([(i, o, 100.0) for i, o in zip(ids, outcomes, strict=False)])
    ledger.add_equity(_equity(rng))
    stats = {"train_loss": 0.69, "val_loss": 0.7, "current_lr": 1e-3, "is_overfitting": False}
    for k in range(4):
        extra = {"avg_attention_entropy": 0.6, "samples_seen": 50 * k, "train_steps": k}
        ledger.add_fusion_stats(START + k * 60 * MIN, {**stats, **extra})
    return ledger


def _write(ledger: Ledger, out: Path, evaluate_from: int | None = None) -> dict[str, Any]:
    return write_report(
        ledger, out, NAMES, 10_000.0, 525_600, "Test run", ["a note"], evaluate_from
    )


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def _row(section: str, first_cell: str) -> list[str]:
    line = next(x for x in section.splitlines() if x.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_report_has_whole_run_and_per_week_tables_for_every_competitor(
    ledger: Ledger, tmp_path: Path
) -> None:
    headline = _write(ledger, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert list(headline["forecast"]) == list(COMPETITORS)
    whole = _section(text, "## Forecast quality (all resolved predictions)")
    for name in COMPETITORS:
        n, ties = headline["forecast"][name]["n"], headline["forecast"][name]["n_ties"]
        assert _row(whole, name)[1:3] == [str(n), str(ties)]
    weekly = _section(text, "## Per week")
    for metric in WEEKLY_METRICS:
        table = weekly.split(f"### {metric.replace('_', ' ')}\n", 1)[1].split("###", 1)[0]
        assert "| week | resolved | ties | " + " | ".join(COMPETITORS) + " |" in table
        assert re.findall(r"^\| (2025-W\d\d) \|", table, re.M) == ["2025-W18", "2025-W19"]


def test_per_week_metrics_exclude_ties_like_the_whole_run(ledger: Ledger, tmp_path: Path) -> None:
    """Week 18's cells equal `forecast_report` over that week's rows (ties excluded)."""
    _write(ledger, tmp_path)
    weekly = _section((tmp_path / "report.md").read_text(), "## Per week")
    predictions = ledger.frame("predictions").filter(ledger.frame("predictions")["seq"] > 0)
    week18 = predictions.filter(predictions["ts"] < START + 120 * MIN)
    outcome = week18["outcome"].replace_strict({"UP": 1.0, "DOWN": 0.0, "TIE": None}).to_numpy()
    expected = forecast_report(week18["prob_up"].to_numpy(), outcome)
    assert expected.n_ties > 0
    for metric in WEEKLY_METRICS:
        table = weekly.split(f"### {metric.replace('_', ' ')}\n", 1)[1]
        cells = _row(table, "2025-W18")
        assert cells[1:4] == [
            str(week18.height),
            str(expected.n_ties),
            fmt(getattr(expected, metric)),
        ]


def test_report_plots_are_valid_pngs(ledger: Ledger, tmp_path: Path) -> None:
    _write(ledger, tmp_path)
    text = (tmp_path / "report.md").read_text()
    for name in ("equity.png", "attention.png", "fusion_training.png"):
        path = tmp_path / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        with Image.open(path) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100
        assert f"]({name})" in text


def test_report_trading_covers_only_the_evaluated_window(ledger: Ledger, tmp_path: Path) -> None:
    """After a warm-up, trades and fees are those of the window; the report says so."""
    whole = _write(ledger, tmp_path / "whole")["trading"]
    headline = _write(ledger, tmp_path / "window", EVALUATE_FROM)
    window = headline["trading"]
    assert whole["trades"] == (N - 1) // 20 and whole["warmup_trades"] == 0
    assert window["warmup_trades"] == 59 // 20  # the last snapshot before the window
    assert window["trades"] == whole["trades"] - window["warmup_trades"]
    assert window["fees"] == pytest.approx((N - 1) / 100 - 59 / 100)
    assert window["intervals"] == N - 60 and window["window_start_ms"] == EVALUATE_FROM
    text = (tmp_path / "window" / "report.md").read_text()
    trading = _section(text, "## Trading")
    assert "Window: the evaluated period only, 2025-05-04 23:00 UTC to" in trading
    assert "its 2 closed round trips" in trading
    assert _row(trading, "trades")[1] == str(window["trades"])
    assert "Window: the whole run" in (tmp_path / "whole" / "report.md").read_text()
    forecast = headline["forecast"]["fusion"]  # predictions: the window's too
    assert forecast["n"] + forecast["n_ties"] == N - 1 - 60
