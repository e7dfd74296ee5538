"""`titan data fetch` against the fake Binance server on 127.0.0.1 (ccxt pointed at it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import polars as pl
import pytest
from typer.testing import CliRunner

from titan.cli import app
from titan.clock import SimClock
from titan.data.exchange import Backoff, make_exchange
from titan.data.fetch import fetch_history
from titan.data.store import CandleStore, SeriesId
from titan.testing.fake_exchange import FakeExchange, FakeSeries

MINUTE = 60_000
SERIES = SeriesId("binance", "BTC/USDT", "1m")
FAST = Backoff(base_s=0.01, cap_s=0.05)


@pytest.fixture(scope="module")
def source(sample_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(sample_dir / "binanceusdm_BTCUSDT_1m.parquet").head(2600)


@pytest.fixture
def now_ms(source: pl.DataFrame) -> int:
    """'Now' is 30 s into candle 2500: that candle is still forming."""
    return int(source["timestamp"][2500]) + 30_000


@pytest.fixture
def server(source: pl.DataFrame, now_ms: int) -> Iterator[FakeExchange]:
    with FakeExchange(
        {"BTCUSDT": FakeSeries.from_frame(source, "1m")}, now_ms=lambda: now_ms
    ) as fake:
        fake.state.timeout_s = 0.6
        yield fake


async def fetch(
    server: FakeExchange, store: CandleStore, since: int, now: int, **kwargs: Any
) -> Any:
    exchange = make_exchange(
        "binance", server.url, options={"fetchMarkets": {"types": ["spot"]}}, timeout=300
    )
    try:
        return await fetch_history(
            exchange, store, SERIES, since, SimClock(now), backoff=FAST, **kwargs
        )
    finally:
        await exchange.close()


async def test_fetch_paginates_and_stores_only_closed_candles(
    server: FakeExchange, source: pl.DataFrame, now_ms: int, tmp_path: Path
) -> None:
    store = CandleStore(tmp_path)
    result = await fetch(server, store, int(source["timestamp"][0]), now_ms)
    stored = store.read(SERIES)
    assert result.pages >= 3 and result.stored == 2500
    assert stored.equals(source.head(2500))  # identical to the source, forming candle excluded


async def test_fetch_resumes_from_last_stored_candle(
    server: FakeExchange, source: pl.DataFrame, now_ms: int, tmp_path: Path
) -> None:
    store = CandleStore(tmp_path)
    since = int(source["timestamp"][0])
    await fetch(server, store, since, now_ms, until_ms=since + 1200 * MINUTE)
    assert store.read(SERIES).height == 1200
    server.requests.clear()
    result = await fetch(server, store, since, now_ms)
    assert result.stored == 1300 and store.read(SERIES).equals(source.head(2500))
    assert server.requests.count("GET /api/v3/klines") == 2  # 1000 + 300: nothing refetched


@pytest.mark.parametrize("fault", ["429", "418", "500", "503", "timeout", "malformed"])
async def test_fetch_survives_injected_faults(
    fault: str, server: FakeExchange, source: pl.DataFrame, now_ms: int, tmp_path: Path
) -> None:
    server.inject(fault, count=2, path_prefix="/api/v3/klines")
    store = CandleStore(tmp_path)
    result = await fetch(server, store, int(source["timestamp"][0]), now_ms)
    assert result.stored == 2500 and store.read(SERIES).equals(source.head(2500))


async def test_exchange_errors_are_not_retried(server: FakeExchange, tmp_path: Path) -> None:
    exchange = make_exchange("binance", server.url, options={"fetchMarkets": {"types": ["spot"]}})
    try:
        with pytest.raises(ccxt.BadSymbol):
            await fetch_history(
                exchange,
                CandleStore(tmp_path),
                SeriesId("binance", "DOGE/USDT", "1m"),
                0,
                SimClock(10**13),
                backoff=FAST,
            )
    finally:
        await exchange.close()


async def test_fetch_honours_the_rate_limiter(
    server: FakeExchange, source: pl.DataFrame, now_ms: int, tmp_path: Path
) -> None:
    exchange = make_exchange(
        "binance", server.url, options={"fetchMarkets": {"types": ["spot"]}}, rateLimit=150
    )
    started = time.monotonic()
    try:
        await fetch_history(
            exchange,
            CandleStore(tmp_path),
            SERIES,
            int(source["timestamp"][0]),
            SimClock(now_ms),
            page_limit=500,
            backoff=FAST,
        )
    finally:
        await exchange.close()
    requests = len(server.requests)  # exchangeInfo + 6 kline pages
    assert requests >= 6
    assert time.monotonic() - started >= 0.15 * (requests - 2)


def test_cli_fetch_and_info(server: FakeExchange, source: pl.DataFrame, tmp_path: Path) -> None:
    since, until = int(source["timestamp"][0]), int(source["timestamp"][1500])
    runner = CliRunner()
    args = [
        "data",
        "fetch",
        "--exchange",
        "binance",
        "--symbol",
        "BTC/USDT",
        "--timeframe",
        "1m",
        "--since",
        str(since),
        "--until",
        str(until),
        "--api-url",
        server.url,
        "--store",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1500 candles stored" in result.output
    info = runner.invoke(app, ["data", "info", "--store", str(tmp_path)])
    assert info.exit_code == 0 and "1500" in info.output and "BTC/USDT" in info.output
