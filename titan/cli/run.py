"""`titan run` (the daemon), `titan backtest` and the `history` alias of the design documents."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from titan.cli.common import (
    ConfigOption,
    SetOption,
    app,
    console,
    load_or_exit,
    parse_overrides,
    setup_logging,
)
from titan.clock import LiveClock
from titan.config import ConfigError, TitanConfig
from titan.data.timeframes import timeframe_ms
from titan.engine.compose import build_engine
from titan.engine.engine import Engine
from titan.engine.records import RunSummary
from titan.evaluation.report import write_report

MINUTES_PER_YEAR = 525_600


def _build(config: TitanConfig, confirm_live: bool) -> Engine:
    try:
        return build_engine(config, confirm_live)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


@contextmanager
def _progress(engine: Engine, total: int | None, label: str) -> Iterator[None]:
    if not total or not console.is_terminal:
        yield
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        engine.on_interval = lambda _interval: bar.advance(task)
        yield


def run_engine(
    config: TitanConfig, label: str, confirm_live: bool = False
) -> tuple[Engine, RunSummary]:
    engine = _build(config, confirm_live)

    async def main() -> RunSummary:
        from titan.ops.runtime import run_daemon

        # signal handlers, MQTT, metrics, health file and watchdog around engine.run()
        return await run_daemon(engine, config, feed_health=engine.parts.feed_health)

    replay = config.feed.kind == "replay"
    total = getattr(engine.parts.feed(None), "total", None) if replay else None
    with _progress(engine, total, label):
        summary = asyncio.run(main())
    return engine, summary


def report(
    engine: Engine,
    config: TitanConfig,
    out_dir: Path,
    title: str,
    evaluate_from: int | None = None,
) -> dict[str, Any]:
    minutes = timeframe_ms(config.data.timeframe) / 60_000
    notes = [
        f"Mode `{config.mode}`, symbols {', '.join(config.data.symbols)} ({config.data.exchange}, "
        f"{config.data.timeframe}), horizon {config.models.horizon} candle(s), "
        f"fusion {'enabled' if config.fusion.enabled else 'disabled'}.",
        "Walk-forward: base models refit on past data only, the fusion learns from outcomes "
        "after they resolve; every figure is out of sample. Ties are excluded from direction "
        "metrics and counted.",
    ]
    return write_report(
        engine.ledger,
        out_dir,
        engine.ensemble.names,
        config.trading.starting_cash,
        MINUTES_PER_YEAR / minutes,
        title,
        notes,
        evaluate_from,
    )


def run_id() -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(LiveClock().now_ms() / 1000, UTC).strftime("%Y%m%d-%H%M%S")


@app.command("run")
def run_command(
    config: ConfigOption = None,
    mode: Annotated[
        str | None, typer.Option(help="live | paper | backtest (overrides the config).")
    ] = None,
    overrides: SetOption = None,
    confirm_live: Annotated[
        bool,
        typer.Option(
            "--confirm-live",
            help="Required (or TITAN_CONFIRM_LIVE=yes) with mode = live: real orders.",
        ),
    ] = False,
) -> None:
    """Run the daemon: the embedded default paper-trades the bundled sample, then reports."""
    pairs = parse_overrides(overrides)
    if mode:
        pairs["mode"] = mode
    settings = load_or_exit(config, pairs)
    setup_logging(settings, to_stderr=False)
    engine, summary = run_engine(settings, f"{settings.mode} {settings.feed.kind}", confirm_live)
    _print_summary(summary)
    if summary.finished and settings.engine.report:
        out = Path(settings.engine.reports_dir) / f"{settings.mode}-{run_id()}"
        headline = report(engine, settings, out, f"Titan {settings.mode} run")
        _print_headline(headline)
        console.print(f"report: {out / 'report.md'}")
    engine.ledger.close()


def _print_summary(summary: RunSummary) -> None:
    console.print(
        f"intervals {summary.intervals}, decisions {summary.decisions}, "
        f"outcomes {summary.resolved}, fills {summary.fills}, "
        f"{'finished' if summary.finished else 'stopped (resumable)'}"
    )


def _print_headline(headline: dict[str, Any], title: str = "") -> None:
    table = Table("model", "n", "ties", "accuracy", "log loss", "AUC", "ECE", title=title or None)
    for name, row in headline["forecast"].items():
        table.add_row(
            name,
            str(row["n"]),
            str(row["n_ties"]),
            f"{row['accuracy']:.4f}",
            f"{row['log_loss']:.4f}",
            f"{row['roc_auc']:.4f}",
            f"{row['ece']:.4f}",
        )
    console.print(table)
    trading = headline["trading"]
    console.print(
        f"PnL {trading['pnl']:.2f} ({trading['total_return']:.2%}), "
        f"Sharpe {trading['sharpe']:.2f}, max drawdown {trading['max_drawdown']:.2%}, "
        f"trades {trading['trades']}"
    )
