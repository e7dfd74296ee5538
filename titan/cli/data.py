"""`titan data import|fetch|info`: manage the candle store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from titan.cli.common import ConfigOption, console, load_or_exit, setup_logging
from titan.clock import LiveClock
from titan.data.exchange import make_exchange
from titan.data.fetch import fetch_history
from titan.data.importers import ImportFormatError, import_file
from titan.data.store import CandleStore, SeriesId

app = typer.Typer(help="Import, download and inspect stored candles.", no_args_is_help=True)

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Candle store directory (default: data.store of the config)."),
]


def _store(config_path: Path | None, store: Path | None) -> CandleStore:
    config = load_or_exit(config_path)
    setup_logging(config)
    return CandleStore(store or config.data.store)


def iso(ts: int | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def parse_time(text: str) -> int:
    """ISO 8601 date/time (UTC unless it says otherwise) or epoch ms -> epoch ms."""
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@app.command("import")
def import_command(
    paths: Annotated[
        list[Path], typer.Argument(help="CSV, Parquet, freqtrade feather or json files.")
    ],
    exchange: Annotated[
        str | None, typer.Option(help="Exchange id (default: from the file name).")
    ] = None,
    symbol: Annotated[
        str | None, typer.Option(help="Symbol, e.g. BTC/USDT (default: from the file name).")
    ] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Timeframe, e.g. 1m (default: from the file name).")
    ] = None,
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Import candle files into the store (validated, deduplicated, atomic)."""
    target = _store(config, store)
    for path in paths:
        try:
            result = import_file(target, path, exchange, symbol, timeframe)
        except ImportFormatError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        rejected = sum(result.rejected.values())
        console.print(
            f"{path.name}: {result.read} rows read, {result.stored.added} stored, "
            f"{result.stored.duplicates} already stored, {rejected} rejected "
            f"{result.rejected or ''} -> {target.path(result.series)}"
        )


@app.command("fetch")
def fetch_command(
    symbol: Annotated[str, typer.Option(help="Symbol, e.g. BTC/USDT.")],
    since: Annotated[str, typer.Option(help="Start: ISO date/time (UTC) or epoch ms.")],
    exchange: Annotated[str, typer.Option(help="ccxt exchange id.")] = "binance",
    timeframe: Annotated[str, typer.Option(help="Candle timeframe.")] = "1m",
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    api_url: Annotated[
        str | None, typer.Option(help="Send REST calls to this base URL (tests, proxies).")
    ] = None,
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Download closed candles through ccxt: paginated, resumable, rate-limit aware."""
    target = _store(config, store)
    series = SeriesId(exchange, symbol, timeframe)
    until_ms = parse_time(until) if until else None
    result = asyncio.run(_fetch(target, series, parse_time(since), until_ms, api_url))
    console.print(
        f"{series.symbol} {series.timeframe}: {result.stored} candles stored in "
        f"{result.pages} pages -> {target.path(series)}"
    )


async def _fetch(
    store: CandleStore, series: SeriesId, since: int, until: int | None, api_url: str | None
) -> Any:
    options = {"fetchMarkets": {"types": ["spot"]}} if api_url else {}
    client = make_exchange(series.exchange, api_url, options=options)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"fetch {series.symbol}", total=1.0)

            def progress(cursor: int, end: int) -> None:
                bar.update(task, completed=min(1.0, (cursor - since) / max(1, end - since)))

            return await fetch_history(
                client, store, series, since, LiveClock(), until_ms=until, progress=progress
            )
    finally:
        await client.close()


@app.command("info")
def info_command(store: StoreOption = None, config: ConfigOption = None) -> None:
    """Rows, time range and gaps of every stored series."""
    target = _store(config, store)
    table = Table("exchange", "symbol", "timeframe", "rows", "first", "last", "gaps", "missing")
    for series in target.list_series():
        info = target.info(series)
        table.add_row(
            series.exchange,
            series.symbol,
            series.timeframe,
            str(info.rows),
            iso(info.first_ts),
            iso(info.last_ts),
            str(len(info.gaps)),
            str(info.missing),
        )
    console.print(table)
