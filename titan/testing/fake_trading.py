"""Signed requests and order/trade records of the fake Binance spot server.

`check_signature` verifies a request the way Binance does (X-MBX-APIKEY header, HMAC-SHA256
of the parameters with the API secret, timestamp within recvWindow of the wall clock) and
answers failures with Binance's error codes, so ccxt raises `AuthenticationError`.
`FakeOrder` / `FakeTrade` render Binance's JSON. The account itself (balances, matching)
is `titan.testing.fake_account.FakeAccount`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

Reply = tuple[int, Any]
MAX_RECV_WINDOW_MS = 60_000
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


def error(code: int, msg: str, status: int = 400) -> Reply:
    return status, {"code": code, "msg": msg}


def missing(name: str) -> Reply:
    return error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def num(value: float) -> str:
    return f"{value:.8f}"


# -- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeKeys:
    """The one API key pair the fake server accepts."""

    api_key: str = "fake-api-key-0123456789abcdef"
    api_secret: str = "fake-api-secret-fedcba9876543210"


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_signature(
    keys: FakeKeys, api_key: str | None, total_params: str, *, leaky: bool = False
) -> Reply | None:
    """None if the request is properly signed, else Binance's error reply.

    `total_params` is the query string followed by the body, as Binance signs them. With
    `leaky`, error messages echo the request (key, parameters, signature): a hostile server
    for redaction tests.
    """
    echo = f" [key={api_key} params={total_params}]" if leaky else ""
    if not api_key:
        return error(-2014, "API-key format invalid." + echo, 401)
    if not hmac.compare_digest(api_key, keys.api_key):
        return error(-2015, "Invalid API-key, IP, or permissions for action." + echo, 401)
    payload, found, signature = total_params.rpartition("&signature=")
    if not found:
        return missing("signature")
    if not hmac.compare_digest(signature, sign(keys.api_secret, payload)):
        return error(-1022, "Signature for this request is not valid." + echo)
    return _check_timestamp(dict(parse_qsl(payload, keep_blank_values=True)))


def _check_timestamp(params: Mapping[str, str]) -> Reply | None:
    """Loose recvWindow check against the wall clock (the candles' clock is simulated)."""
    if "timestamp" not in params:
        return missing("timestamp")
    window = int(params.get("recvWindow", "5000"))
    if window > MAX_RECV_WINDOW_MS:
        return error(-1131, "recvWindow must be less than 60000")
    wall = time.time() * 1000
    stamp = int(params["timestamp"])
    if stamp > wall + 1000 or wall - stamp > window:
        return error(-1021, "Timestamp for this request is outside of the recvWindow.")
    return None


# -- orders and trades ------------------------------------------------------------------------


@dataclass
class FakeOrder:
    order_id: int
    client_id: str
    symbol: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT
    quantity: float
    price: float  # 0 for market orders
    time_in_force: str
    time: int
    checked_ts: int  # open time of the last candle this order was matched against
    status: str = "NEW"
    executed: float = 0.0
    quote: float = 0.0
    update_time: int = 0
    resting: bool = False  # funds locked, waiting for a later candle

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> float:
        return max(self.quantity - self.executed, 0.0)

    def to_json(self) -> dict[str, Any]:
        """GET /api/v3/order and openOrders format."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_id,
            "price": num(self.price),
            "origQty": num(self.quantity),
            "executedQty": num(self.executed),
            "cummulativeQuoteQty": num(self.quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": num(0.0),
            "icebergQty": num(0.0),
            "time": self.time,
            "updateTime": self.update_time or self.time,
            "isWorking": True,
            "workingTime": self.time,
            "origQuoteOrderQty": num(0.0),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def cancel_json(self, cancel_id: str) -> dict[str, Any]:
        body = self.to_json()
        for key in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking", "workingTime"):
            body.pop(key)
        body.pop("origQuoteOrderQty")
        return {**body, "origClientOrderId": self.client_id, "clientOrderId": cancel_id}


@dataclass(frozen=True)
class FakeTrade:
    trade_id: int
    order_id: int
    symbol: str
    buyer: bool
    maker: bool
    price: float
    qty: float
    commission: float
    commission_asset: str
    time: int

    def to_json(self) -> dict[str, Any]:
        """GET /api/v3/myTrades format."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": num(self.price),
            "qty": num(self.qty),
            "quoteQty": num(self.price * self.qty),
            "commission": num(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.buyer,
            "isMaker": self.maker,
            "isBestMatch": True,
        }

    def fill_json(self) -> dict[str, Any]:
        """The `fills` entries of a FULL new-order response."""
        return {
            "price": num(self.price),
            "qty": num(self.qty),
            "commission": num(self.commission),
            "commissionAsset": self.commission_asset,
            "tradeId": self.trade_id,
        }


def split_symbol(symbol_id: str) -> tuple[str, str]:
    """`BTCUSDT` -> (`BTC`, `USDT`): fake markets are all quoted in a 4-letter asset."""
    return symbol_id[:-4], symbol_id[-4:]
