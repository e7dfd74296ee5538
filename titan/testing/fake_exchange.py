"""A fake Binance spot REST server on 127.0.0.1 for tests, demos and fault drills.

Serves a subset of the Binance spot API from real recorded candles: the public
`/api/v3/ping`, `time`, `exchangeInfo` and `klines` (the forming, not yet closed candle
included exactly as Binance does), and the signed trading endpoints `order` (POST, GET,
DELETE), `openOrders` (GET, DELETE), `account` and `myTrades` for one account
(`titan.testing.fake_trading`: signature checks; `titan.testing.fake_account`: balances
and order matching against the candle at the server's `now_ms`). Faults can be injected
on any path: HTTP 429/418/5xx, timeouts, malformed JSON, connection resets, and the two
"processed, but the answer is lost" faults `timeout_after` / `500_after` (the request
takes effect, then the client times out or gets a 500). Point ccxt at it with
`make_exchange("binance", server.url, options={"fetchMarkets": {"types": ["spot"]}})`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import polars as pl

from titan.data.timeframes import timeframe_ms
from titan.testing.fake_account import FakeAccount
from titan.testing.fake_trading import FakeKeys, Reply, check_signature

Handler = Callable[[dict[str, str]], tuple[int, Any]]
AccountHandler = Callable[[Mapping[str, str], int], Reply]
FAULTS = ("429", "418", "500", "503", "timeout", "malformed", "reset", "timeout_after", "500_after")
AFTER_FAULTS = ("timeout_after", "500_after")  # the request is processed, the answer is lost


@dataclass
class FakeSeries:
    """Candles of one symbol at one timeframe, as arrays (timestamp ms, o, h, l, c, v)."""

    timeframe: str
    data: np.ndarray  # shape (n, 6), float64; column 0 is the open time in ms

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, timeframe: str) -> FakeSeries:
        columns = ["timestamp", "open", "high", "low", "close", "volume"]
        return cls(timeframe, frame.select(columns).to_numpy().astype(np.float64))


@dataclass
class Fault:
    kind: str
    path_prefix: str


@dataclass
class FakeExchangeState:
    series: dict[str, FakeSeries] = field(default_factory=dict)
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[str] = field(default_factory=list)
    timeout_s: float = 3.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeExchange:
    """Run with `with FakeExchange(series) as server:`; `server.url` is the base URL."""

    def __init__(
        self,
        series: Mapping[str, FakeSeries],
        now_ms: Callable[[], int] | None = None,
        *,
        keys: FakeKeys | None = None,
        balances: Mapping[str, float] | None = None,
        fee_rate: float = 0.001,
        leaky_errors: bool = False,
    ) -> None:
        """`balances` (asset -> free amount) start the account; `fee_rate` is the taker and
        maker commission; `leaky_errors` makes auth errors echo the request (redaction tests).
        """
        self.state = FakeExchangeState(series=dict(series))
        if now_ms is not None:
            self.state.now_ms = now_ms
        self.keys = keys or FakeKeys()
        self.leaky_errors = leaky_errors
        self.account = FakeAccount(
            {symbol: s.data for symbol, s in self.state.series.items()},
            free=dict(balances or {}),
            taker_fee=fee_rate,
            maker_fee=fee_rate,
        )
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/api/v3/ping"): lambda _q: (200, {}),
            ("GET", "/api/v3/time"): lambda _q: (200, {"serverTime": self.state.now_ms()}),
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
            ("GET", "/api/v3/klines"): self._klines,
        }
        self.signed: set[tuple[str, str]] = set()
        self._add_signed_routes()
        self._account_lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[str]:
        return self.state.requests

    def inject(self, kind: str, count: int = 1, path_prefix: str = "/") -> None:
        """Answer the next `count` requests under `path_prefix` with fault `kind`."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {FAULTS}")
        with self.state.lock:
            self.state.faults.extend(Fault(kind, path_prefix) for _ in range(count))

    def start(self) -> FakeExchange:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # a quick stop() between tests
            name="fake-exchange",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeExchange:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _add_signed_routes(self) -> None:
        account = self.account
        table: dict[tuple[str, str], AccountHandler] = {
            ("POST", "/api/v3/order"): account.new_order,
            ("GET", "/api/v3/order"): account.query_order,
            ("DELETE", "/api/v3/order"): account.cancel_order,
            ("GET", "/api/v3/openOrders"): account.list_open_orders,
            ("DELETE", "/api/v3/openOrders"): account.cancel_open_orders,
            ("GET", "/api/v3/account"): account.account,
            ("GET", "/api/v3/myTrades"): account.my_trades,
        }
        for route, handler in table.items():
            self.routes[route] = self._trading(handler)
            self.signed.add(route)

    def _trading(self, handler: AccountHandler) -> Handler:
        """Run an account endpoint at the server's now, after matching resting orders."""

        def run(query: dict[str, str]) -> tuple[int, Any]:
            with self.account_lock:
                now = self.state.now_ms()
                self.account.match(now)
                return handler(query, now)

        return run

    @property
    def account_lock(self) -> threading.RLock:
        """Hold it to read or change `account` from a test while the server runs."""
        return self._account_lock

    def authenticate(self, api_key: str | None, total_params: str) -> Reply | None:
        return check_signature(self.keys, api_key, total_params, leaky=self.leaky_errors)

    def take_fault(self, path: str) -> Fault | None:
        with self.state.lock:
            for fault in self.state.faults:
                if path.startswith(fault.path_prefix):
                    self.state.faults.remove(fault)
                    return fault
        return None

    def _exchange_info(self, _query: dict[str, str]) -> tuple[int, Any]:
        symbols = [_market(symbol) for symbol in self.state.series]
        return 200, {
            "timezone": "UTC",
            "serverTime": self.state.now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def _klines(self, query: dict[str, str]) -> tuple[int, Any]:
        series = self.state.series.get(query.get("symbol", ""))
        if series is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if query.get("interval") != series.timeframe:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        rows = _select_klines(series, query, self.state.now_ms())
        return 200, [_kline(row, timeframe_ms(series.timeframe)) for row in rows]


def _select_klines(series: FakeSeries, query: dict[str, str], now_ms: int) -> np.ndarray:
    """Binance semantics: open time in [startTime, endTime], at most `limit` (<=1000), up to now."""
    stamps = series.data[:, 0]
    visible = stamps <= now_ms  # includes the forming candle, as Binance does
    if "startTime" in query:
        visible &= stamps >= int(query["startTime"])
    if "endTime" in query:
        visible &= stamps <= int(query["endTime"])
    limit = min(int(query.get("limit", 500)), 1000)
    rows = series.data[visible]
    return rows[:limit] if "startTime" in query or "endTime" not in query else rows[-limit:]


def _kline(row: np.ndarray, step_ms: int) -> list[Any]:
    open_time = int(row[0])
    return [
        open_time,
        f"{row[1]:.8f}",
        f"{row[2]:.8f}",
        f"{row[3]:.8f}",
        f"{row[4]:.8f}",
        f"{row[5]:.8f}",
        open_time + step_ms - 1,
        "0",
        0,
        "0",
        "0",
        "0",
    ]


def _market(symbol_id: str) -> dict[str, Any]:
    base, quote = symbol_id[:-4], symbol_id[-4:]  # fake markets are all quoted in a 4-letter asset
    return {
        "symbol": symbol_id,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.00000100",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.00000100",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00000100",
                "maxQty": "9000000.00000000",
                "stepSize": "0.00000100",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "maxNotional": "9000000.00000000",
            },
        ],
    }


def _make_handler(exchange: FakeExchange) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            parsed = urlparse(self.path)
            exchange.state.requests.append(f"{method} {parsed.path}")
            body = self._read_body()
            fault = exchange.take_fault(parsed.path)
            if fault is not None and fault.kind not in AFTER_FAULTS:
                self._fault(fault.kind)
                return
            reply = self._answer(method, parsed.path, parsed.query, body)
            if fault is not None:
                self._fault(fault.kind)
                return
            self._send(*reply)

        def _answer(self, method: str, path: str, query: str, body: str) -> Reply:
            route = exchange.routes.get((method, path))
            if route is None:
                return 404, {"code": -1, "msg": "not found"}
            if (method, path) in exchange.signed:
                refused = exchange.authenticate(self.headers.get("X-MBX-APIKEY"), query + body)
                if refused is not None:
                    return refused
            params = {key: values[-1] for key, values in parse_qs(query).items()}
            params.update({key: values[-1] for key, values in parse_qs(body).items()})
            return route(params)

        def _read_body(self) -> str:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length).decode() if length else ""

        def _fault(self, kind: str) -> None:
            if kind in ("timeout", "timeout_after"):
                time.sleep(exchange.state.timeout_s)
                self._send(200, [])
            elif kind == "500_after":
                self._send(500, {"code": -1001, "msg": "injected 500 after processing"})
            elif kind == "malformed":
                self._send_raw(200, b'{"this is": not json')
            elif kind == "reset":
                self.close_connection = True
                self.connection.close()
            else:
                code = (
                    -1003 if kind in ("429", "418") else -1001
                )  # Binance: too many requests / internal
                self._send(
                    int(kind),
                    {"code": code, "msg": f"injected {kind}"},
                    {"Retry-After": "1"} if kind in ("429", "418") else None,
                )

        def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(body).encode(), headers)

        def _send_raw(
            self, status: int, payload: bytes, headers: Mapping[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. its timeout fired)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return RequestHandler
