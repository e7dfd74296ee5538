"""The fake Binance server's signed endpoints answer like Binance (raw HTTP, no ccxt)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import polars as pl
import pytest

from titan.testing.fake_exchange import FakeExchange, FakeSeries
from titan.testing.fake_trading import sign


@pytest.fixture
def fake(sample_dir: Path) -> Iterator[FakeExchange]:
    frame = pl.read_parquet(sample_dir / "binanceusdm_BTCUSDT_1m.parquet").head(100)
    now = int(frame["timestamp"][50]) + 1_000
    series = {"BTCUSDT": FakeSeries.from_frame(frame, "1m")}
    with FakeExchange(series, now_ms=lambda: now, balances={"USDT": 1_000.0}) as server:
        yield server


def _call(
    fake: FakeExchange,
    method: str,
    path: str,
    params: dict[str, Any],
    *,
    key: str | None = "default",
    secret: str | None = None,
    timestamp: int | None = None,
) -> tuple[int, Any]:
    query = urlencode({**params, "timestamp": timestamp or int(time.time() * 1000)})
    query += "&signature=" + sign(secret or fake.keys.api_secret, query)
    request = urllib.request.Request(f"{fake.url}{path}?{query}", method=method)
    if key is not None:
        request.add_header("X-MBX-APIKEY", fake.keys.api_key if key == "default" else key)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


MARKET = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
LIMIT = {**MARKET, "type": "LIMIT", "quantity": "0.01", "price": "1000", "timeInForce": "GTC"}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"key": None}, 401, -2014),
        ({"key": "someone-else"}, 401, -2015),
        ({"secret": "wrong-secret"}, 400, -1022),
        ({"timestamp": 1_000}, 400, -1021),
    ],
)
def test_badly_signed_requests_are_refused_with_binance_codes(
    fake: FakeExchange, kwargs: dict[str, Any], status: int, code: int
) -> None:
    answer = _call(fake, "GET", "/api/v3/account", {}, **kwargs)
    assert (answer[0], answer[1]["code"]) == (status, code)
    assert fake.account.orders == {}


def test_client_ids_follow_binance_rules(fake: FakeExchange) -> None:
    status, body = _call(fake, "POST", "/api/v3/order", {**LIMIT, "newClientOrderId": "a b"})
    assert (status, body["code"]) == (400, -1100)
    assert _call(fake, "POST", "/api/v3/order", {**LIMIT, "newClientOrderId": "x1"})[0] == 200
    status, body = _call(fake, "POST", "/api/v3/order", {**LIMIT, "newClientOrderId": "x1"})
    assert (status, body) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    _call(fake, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "x1"})
    assert _call(fake, "POST", "/api/v3/order", {**LIMIT, "newClientOrderId": "x1"})[0] == 200


def test_filters_and_balance_are_enforced(fake: FakeExchange) -> None:
    for params, code, msg in [
        ({**MARKET, "quantity": "0.0000001"}, -1013, "Filter failure: LOT_SIZE"),
        ({**MARKET, "quantity": "0.00001"}, -1013, "Filter failure: NOTIONAL"),
        ({**MARKET, "quantity": "1"}, -2010, "insufficient balance"),
        ({**LIMIT, "price": "1000.0000001"}, -1013, "Filter failure: PRICE_FILTER"),
    ]:
        status, body = _call(fake, "POST", "/api/v3/order", params)
        assert status == 400 and body["code"] == code and msg in body["msg"]
    status, body = _call(fake, "POST", "/api/v3/order", MARKET)
    assert status == 200 and body["status"] == "FILLED" and len(body["fills"]) == 1
    assert body["fills"][0]["commissionAsset"] == "BTC"
