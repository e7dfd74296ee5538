"""One spot account of the fake Binance server: balances, orders and trades, matched
against the recorded candles at the server's clock.

Rules:

- MARKET orders fill at once, completely, at the close of the candle at "now" (taker fee).
- LIMIT orders that are marketable at that close fill the same way; the others rest (their
  funds locked) until a later candle crosses the limit (buy: low <= limit, sell: high >=
  limit), then fill at the limit as maker, `limit_fill_fraction` of the order per crossing
  candle. IOC limits that do not fill at once expire.
- The commission is taken from the asset received: base for buys, quote for sells.
- newClientOrderId follows Binance: at most 36 characters of `[.A-Z:/a-z0-9_-]`, and a new
  order reusing the id of an *open* order is rejected (-2010 "Duplicate order sent.");
  the id of a filled or cancelled order may be used again, as on Binance.
- Filters: LOT_SIZE / PRICE_FILTER step 0.000001, NOTIONAL >= 5 quote (see `MIN_NOTIONAL`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from titan.testing.fake_trading import (
    FakeOrder,
    FakeTrade,
    Reply,
    error,
    missing,
    num,
    split_symbol,
)

CLIENT_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
STEP = Decimal("0.000001")  # LOT_SIZE stepSize and PRICE_FILTER tickSize of every market
MIN_NOTIONAL = 5.0


def _on_step(text: str) -> bool:
    """A finite decimal that is a whole number of steps."""
    try:
        value = Decimal(text)
        return value.is_finite() and value % STEP == 0
    except InvalidOperation:
        return False


@dataclass
class FakeAccount:
    """Balances, orders and trades of one spot account. Callers hold the server's lock."""

    candles: Mapping[str, np.ndarray]  # symbol id -> rows (open time, o, h, l, c, v)
    free: dict[str, float] = field(default_factory=dict)
    locked: dict[str, float] = field(default_factory=dict)
    taker_fee: float = 0.001
    maker_fee: float = 0.001
    limit_fill_fraction: float = 1.0
    orders: dict[int, FakeOrder] = field(default_factory=dict)
    trades: list[FakeTrade] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _trade_ids: Any = field(default_factory=lambda: itertools.count(1))

    # -- queries used by tests ----------------------------------------------------------------

    def balance(self, asset: str) -> tuple[float, float]:
        """(free, locked) of `asset`."""
        return self.free.get(asset, 0.0), self.locked.get(asset, 0.0)

    def open_orders(self, symbol: str | None = None) -> list[FakeOrder]:
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    # -- matching -----------------------------------------------------------------------------

    def candle_at(self, symbol: str, now: int) -> np.ndarray | None:
        rows = self.candles[symbol]
        index = int(np.searchsorted(rows[:, 0], now, side="right")) - 1
        return rows[index] if index >= 0 else None

    def match(self, now: int) -> None:
        """Fill resting limit orders against the candles after their last check, up to now."""
        for order in self.open_orders():
            rows = self.candles[order.symbol]
            later = rows[(rows[:, 0] > order.checked_ts) & (rows[:, 0] <= now)]
            for row in later:
                order.checked_ts = int(row[0])
                buy = order.side == "BUY"
                if (row[3] <= order.price) if buy else (row[2] >= order.price):
                    portion = min(order.remaining, order.quantity * self.limit_fill_fraction)
                    self._fill(order, portion, order.price, maker=True, now=now)
                if not order.is_open:
                    break

    def _fill(self, order: FakeOrder, qty: float, price: float, *, maker: bool, now: int) -> None:
        base, quote = split_symbol(order.symbol)
        fee_rate = self.maker_fee if maker else self.taker_fee
        resting = order.resting
        buy = order.side == "BUY"
        if buy:
            self._take(quote, qty * (order.price if resting else price), resting)
            if resting:  # price improvement on the locked funds goes back to free
                self.free[quote] = self.free.get(quote, 0.0) + qty * (order.price - price)
            commission, asset = qty * fee_rate, base
            self.free[base] = self.free.get(base, 0.0) + qty - commission
        else:
            self._take(base, qty, resting)
            commission, asset = qty * price * fee_rate, quote
            self.free[quote] = self.free.get(quote, 0.0) + qty * price - commission
        trade = FakeTrade(
            next(self._trade_ids), order.order_id, order.symbol, buy, maker, price, qty,
            commission, asset, now,
        )  # fmt: skip
        self.trades.append(trade)
        order.executed += qty
        order.quote += qty * price
        order.update_time = now
        order.status = "FILLED" if order.remaining <= order.quantity * 1e-9 else "PARTIALLY_FILLED"

    def _take(self, asset: str, amount: float, from_locked: bool) -> None:
        book = self.locked if from_locked else self.free
        book[asset] = book.get(asset, 0.0) - amount

    # -- endpoints: (query, now) -> (status, body) ---------------------------------------------

    def new_order(self, query: Mapping[str, str], now: int) -> Reply:
        problem = self._validate(query, now)
        if problem is not None:
            return problem
        order = self._create(query, now)
        fills_before = len(self.trades)
        self._execute(order, now)
        self.orders[order.order_id] = order
        return 200, self._order_reply(order, query, self.trades[fills_before:])

    def _validate(self, q: Mapping[str, str], now: int) -> Reply | None:
        for name in ("symbol", "side", "type", "quantity"):
            if not q.get(name):
                return missing(name)
        if q["symbol"] not in self.candles:
            return error(-1121, "Invalid symbol.")
        if q["side"] not in ("BUY", "SELL"):
            return error(-1117, "Invalid side.")
        if q["type"] not in ("MARKET", "LIMIT"):
            return error(-1116, "Invalid orderType.")
        if q["type"] == "LIMIT":
            for name in ("price", "timeInForce"):
                if not q.get(name):
                    return missing(name)
        return self._validate_client_id(q) or self._validate_filters(q, now)

    def _validate_client_id(self, q: Mapping[str, str]) -> Reply | None:
        client_id = q.get("newClientOrderId")
        if client_id is None:
            return None
        if not CLIENT_ID_PATTERN.match(client_id):
            return error(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; "
                "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        if any(o.client_id == client_id for o in self.open_orders()):
            return error(-2010, "Duplicate order sent.")
        return None

    def _validate_filters(self, q: Mapping[str, str], now: int) -> Reply | None:
        candle = self.candle_at(q["symbol"], now)
        if candle is None:
            return error(-1013, "Market is closed.")
        if not _on_step(q["quantity"]) or float(q["quantity"]) <= 0:
            return error(-1013, "Filter failure: LOT_SIZE")
        if q["type"] == "LIMIT" and (not _on_step(q["price"]) or float(q["price"]) <= 0):
            return error(-1013, "Filter failure: PRICE_FILTER")
        quantity = float(q["quantity"])
        price = float(q["price"]) if q["type"] == "LIMIT" else float(candle[4])
        if quantity * price < MIN_NOTIONAL:
            return error(-1013, "Filter failure: NOTIONAL")
        base, quote = split_symbol(q["symbol"])
        needed, asset = (quantity * price, quote) if q["side"] == "BUY" else (quantity, base)
        if needed > self.free.get(asset, 0.0) + 1e-9:
            return error(-2010, "Account has insufficient balance for requested action.")
        return None

    def _create(self, q: Mapping[str, str], now: int) -> FakeOrder:
        order_id = next(self._ids)
        candle = self.candle_at(q["symbol"], now)
        assert candle is not None  # checked by _validate_filters
        return FakeOrder(
            order_id=order_id,
            client_id=q.get("newClientOrderId") or f"fake-{order_id}",
            symbol=q["symbol"],
            side=q["side"],
            type=q["type"],
            quantity=float(q["quantity"]),
            price=float(q.get("price") or 0.0) if q["type"] == "LIMIT" else 0.0,
            time_in_force=q.get("timeInForce", "GTC") if q["type"] == "LIMIT" else "GTC",
            time=now,
            checked_ts=0,
        )

    def _execute(self, order: FakeOrder, now: int) -> None:
        candle = self.candle_at(order.symbol, now)
        assert candle is not None
        close = float(candle[4])
        marketable = order.type == "MARKET" or (
            close <= order.price if order.side == "BUY" else close >= order.price
        )
        if marketable:
            self._fill(order, order.quantity, close, maker=False, now=now)
        elif order.time_in_force != "GTC":
            order.status = "EXPIRED"
        else:
            self._lock(order, +1.0)
        order.checked_ts = int(candle[0])

    def _lock(self, order: FakeOrder, sign: float) -> None:
        """Move the order's remaining funds free -> locked (sign +1) or back (-1)."""
        base, quote = split_symbol(order.symbol)
        asset, amount = (
            (quote, order.remaining * order.price)
            if order.side == "BUY"
            else (base, order.remaining)
        )
        self.free[asset] = self.free.get(asset, 0.0) - sign * amount
        self.locked[asset] = self.locked.get(asset, 0.0) + sign * amount
        order.resting = sign > 0

    def _order_reply(
        self, order: FakeOrder, q: Mapping[str, str], trades: list[FakeTrade]
    ) -> dict[str, Any]:
        ack = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "transactTime": order.time,
        }
        kind = q.get("newOrderRespType", "FULL")
        if kind == "ACK":
            return ack
        body = order.to_json()
        for key in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
            body.pop(key)
        body.pop("origQuoteOrderQty")
        body = {**ack, **body}
        if kind == "FULL":
            body["fills"] = [t.fill_json() for t in trades]
        return body

    def _find(self, q: Mapping[str, str]) -> FakeOrder | Reply:
        if not q.get("symbol"):
            return missing("symbol")
        if "orderId" in q:
            order = self.orders.get(int(q["orderId"]))
        elif "origClientOrderId" in q:
            same = [o for o in self.orders.values() if o.client_id == q["origClientOrderId"]]
            order = same[-1] if same else None
        else:
            return error(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order is None or order.symbol != q["symbol"]:
            return error(-2013, "Order does not exist.")
        return order

    def query_order(self, q: Mapping[str, str], _now: int) -> Reply:
        found = self._find(q)
        return found if isinstance(found, tuple) else (200, found.to_json())

    def cancel_order(self, q: Mapping[str, str], now: int) -> Reply:
        found = self._find(q)
        if isinstance(found, tuple):
            return error(-2011, "Unknown order sent.") if found[1]["code"] == -2013 else found
        if not found.is_open:
            return error(-2011, "Unknown order sent.")
        return 200, self._cancel(found, now)

    def _cancel(self, order: FakeOrder, now: int) -> dict[str, Any]:
        self._lock(order, -1.0)
        order.status = "CANCELED"
        order.update_time = now
        return order.cancel_json(f"cancel-{order.order_id}")

    def list_open_orders(self, q: Mapping[str, str], _now: int) -> Reply:
        symbol = q.get("symbol")
        if symbol is not None and symbol not in self.candles:
            return error(-1121, "Invalid symbol.")
        return 200, [o.to_json() for o in self.open_orders(symbol)]

    def cancel_open_orders(self, q: Mapping[str, str], now: int) -> Reply:
        if not q.get("symbol"):
            return missing("symbol")
        orders = self.open_orders(q["symbol"])
        if not orders:
            return error(-2011, "Unknown order sent.")
        return 200, [self._cancel(o, now) for o in orders]

    def account(self, _q: Mapping[str, str], now: int) -> Reply:
        assets = sorted(set(self.free) | set(self.locked))
        balances = [
            {
                "asset": a,
                "free": num(self.free.get(a, 0.0)),
                "locked": num(self.locked.get(a, 0.0)),
            }
            for a in assets
        ]
        return 200, {
            "makerCommission": round(self.maker_fee * 1e4),
            "takerCommission": round(self.taker_fee * 1e4),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 1,
        }

    def my_trades(self, q: Mapping[str, str], _now: int) -> Reply:
        if not q.get("symbol"):
            return missing("symbol")
        trades = [t for t in self.trades if t.symbol == q["symbol"]]
        if "orderId" in q:
            trades = [t for t in trades if t.order_id == int(q["orderId"])]
        if "fromId" in q:
            trades = [t for t in trades if t.trade_id >= int(q["fromId"])]
        if "startTime" in q:
            trades = [t for t in trades if t.time >= int(q["startTime"])]
        if "endTime" in q:
            trades = [t for t in trades if t.time <= int(q["endTime"])]
        limit = min(int(q.get("limit", 500)), 1000)
        return 200, [t.to_json() for t in trades[:limit]]
