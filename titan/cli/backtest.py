"""`titan backtest` (with `--compare`) and `titan history` (the design documents' command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
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
from titan.cli.run import _print_headline, _print_summary, report, run_engine, run_id
from titan.config import BACKTEST_CONFIG_PATH, TitanConfig
from titan.data.store import CandleStore, SeriesId
from titan.features import WARMUP


def backtest(
    settings: TitanConfig, name: str, out_root: Path, evaluate_from: int | None = None
) -> dict[str, Any]:
    """One fresh backtest run (its own state directory) and its report."""
    engine, summary = run_engine(settings, f"backtest {name}")
    _print_summary(summary)
    headline = report(engine, settings, out_root / name, f"Titan backtest: {name}", evaluate_from)
    engine.ledger.close()
    return headline


def variant(
    base: dict[str, str], extra: dict[str, str], state: Path, config: Path | None
) -> TitanConfig:
    pairs = {
        **base,
        **extra,
        "mode": "backtest",
        "feed.kind": "replay",
        "runtime.state_dir": str(state),
    }
    return load_or_exit(config, pairs)


@app.command("backtest")
def backtest_command(
    config: ConfigOption = None,
    overrides: SetOption = None,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            help="Also run a baseline with KEY=VALUE changed (e.g. fusion.enabled=false)."
        ),
    ] = None,
    store: Annotated[Path | None, typer.Option(help="Candle store (e.g. ../shared/data).")] = None,
    exchange: Annotated[str | None, typer.Option(help="Exchange of the stored series.")] = None,
    symbol: Annotated[
        list[str] | None, typer.Option(help="Symbol(s) to replay (repeatable).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Start (ISO, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="End (ISO, UTC).")] = None,
) -> None:
    """Replay stored candles through the engine from a fresh state and write a report."""
    base = parse_overrides(overrides)
    base.update(_data_overrides(store, exchange, symbol, start, end))
    config = config or BACKTEST_CONFIG_PATH
    rid = run_id()
    out_root = Path(load_or_exit(config, base).engine.reports_dir) / f"backtest-{rid}"
    runs = {"fusion": {}} if not compare else {"baseline": parse_overrides(compare), "fusion": {}}
    headlines = {}
    for name, extra in runs.items():
        settings = variant(base, extra, Path("state") / "backtests" / rid / name, config)
        setup_logging(settings)
        headlines[name] = backtest(settings, name, out_root)
        _print_headline(headlines[name], title=name)
    if compare:
        _print_comparison(headlines, " ".join(compare))
    console.print(f"reports: {out_root}")


def _data_overrides(
    store: Path | None,
    exchange: str | None,
    symbols: list[str] | None,
    start: str | None,
    end: str | None,
) -> dict[str, str]:
    pairs = {}
    if store:
        pairs["data.store"] = str(store)
    if exchange:
        pairs["data.exchange"] = exchange
    if symbols:
        pairs["data.symbols"] = "[" + ", ".join(f'"{s}"' for s in symbols) + "]"
    if start:
        pairs["feed.start"] = start
    if end:
        pairs["feed.end"] = end
    return pairs


COMPARED_FORECAST = ("accuracy", "log_loss", "brier", "ece", "roc_auc")
COMPARED_TRADING = ("pnl", "total_return", "sharpe", "max_drawdown", "trades", "win_rate", "fees")


def _print_comparison(headlines: dict[str, dict[str, Any]], change: str) -> None:
    """The acted-on forecast's quality and the trading of both runs, side by side."""
    table = Table("metric", f"baseline ({change})", "fusion", title="side by side")
    for key in COMPARED_FORECAST:
        table.add_row(key, *(_cell(h["forecast"]["fusion"][key]) for h in headlines.values()))
    for key in COMPARED_TRADING:
        table.add_row(key, *(_cell(h["trading"][key]) for h in headlines.values()))
    console.print(table)


def _cell(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{float(value):.4f}"


@app.command("history")
def history_command(
    symbol: Annotated[str, typer.Option(help="Stored symbol, e.g. BTCUSDT.")],
    interval: Annotated[int, typer.Option(help="Candle minutes.")] = 1,
    hours: Annotated[float, typer.Option(help="Replay the last N hours of stored data.")] = 24.0,
    config: ConfigOption = None,
) -> None:
    """Backtest replay of the last N hours of stored data (alias from the design documents).

    The replay starts early enough to fit the base models first (warm-up, not scored)."""
    settings = load_or_exit(config or BACKTEST_CONFIG_PATH)
    series = SeriesId(settings.data.exchange, symbol, f"{interval}m")
    last = CandleStore(settings.data.store).last_ts(series)
    if last is None:
        console.print(
            f"[red]no stored candles for {symbol} {interval}m in {settings.data.store}[/red]"
        )
        raise typer.Exit(1)
    evaluate_from = int(last - hours * 3_600_000) + interval * 60_000  # N hours of candles
    warmup = (settings.models.min_train + WARMUP + 120) * interval * 60_000
    pairs = {
        "data.timeframe": f"{interval}m",
        "data.symbols": f'["{symbol}"]',
        "feed.start": _iso(evaluate_from - warmup),
    }
    rid = run_id()
    state = Path("state") / "backtests" / rid / "history"
    settings = variant(pairs, {}, state, config or BACKTEST_CONFIG_PATH)
    setup_logging(settings)
    out_root = Path(settings.engine.reports_dir) / f"history-{rid}"
    headline = backtest(settings, "history", out_root, evaluate_from)
    _print_headline(headline, title=f"last {hours:g} h of {symbol} (after warm-up)")
    console.print(f"report: {out_root / 'history' / 'report.md'}")


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
