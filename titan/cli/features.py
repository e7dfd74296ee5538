"""`titan features`: compute the feature table of a stored series and write Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from titan.cli.common import ConfigOption, app, console, load_or_exit, setup_logging
from titan.data.store import CandleStore, SeriesId
from titan.features import FEATURE_NAMES, WARMUP, feature_frame


@app.command("features")
def features_command(
    symbol: Annotated[str, typer.Option(help="Symbol, e.g. BTC/USDT.")],
    out: Annotated[Path, typer.Option(help="Output Parquet file.")],
    exchange: Annotated[str | None, typer.Option(help="Exchange (default: data.exchange).")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Timeframe (default: data.timeframe).")
    ] = None,
    store: Annotated[Path | None, typer.Option(help="Candle store (default: data.store).")] = None,
    config: ConfigOption = None,
) -> None:
    """Compute the 40 normalised features of a stored series (NaN during warm-up)."""
    settings = load_or_exit(config)
    setup_logging(settings)
    candles = CandleStore(store or settings.data.store)
    series = SeriesId(
        exchange or settings.data.exchange, symbol, timeframe or settings.data.timeframe
    )
    frame = candles.read(series)
    if frame.height == 0:
        console.print(f"[red]no candles stored for {series.symbol} at {candles.path(series)}[/red]")
        raise typer.Exit(1)
    table = feature_frame(frame)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.write_parquet(out, compression="zstd")
    console.print(
        f"{table.height} rows x {len(FEATURE_NAMES)} features (warm-up {WARMUP} rows) -> {out}"
    )
