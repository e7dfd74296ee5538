"""Values and pure steps of the live broker: client ids, order requests, exchange orders and
balances, trade -> `Fill` conversion, error redaction, the order journal's interface and
rows. No I/O here (see `live_broker`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import ccxt
import structlog

from titan.ops.logging import redact_text
from titan.trading.broker import BrokerError
from titan.trading.types import Fill, Order, Side

log = structlog.get_logger(__name__)

BPS = 1e-4
CLIENT_ID_PREFIX = "titan-"
MAX_CLIENT_ID = 36
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SIGNED = re.compile(r"(signature|apiKey|api_key|secret)=[^&\s\"']+", re.IGNORECASE)


def client_order_id(order_id: str) -> str:
    """`BTC/USDT-1700000000000-0` -> `titan-BTC_USDT-1700000000000-0` (<= 36 characters,
    `[A-Za-z0-9_-]`; a longer id becomes the prefix plus a hash)."""
    safe = CLIENT_ID_PREFIX + _UNSAFE.sub("_", order_id)
    if len(safe) <= MAX_CLIENT_ID:
        return safe
    digest = hashlib.sha256(order_id.encode()).hexdigest()
    return CLIENT_ID_PREFIX + digest[: MAX_CLIENT_ID - len(CLIENT_ID_PREFIX)]


def redact_error(text: str) -> str:
    """`text` without registered secrets or signed query parameters."""
    return _SIGNED.sub(r"\1=***", redact_text(text))


def describe(exc: BaseException) -> str:
    """`ErrorType: redacted message`, for logs and wrapped exceptions."""
    return f"{type(exc).__name__}: {redact_error(str(exc))}"


class LiveBrokerError(BrokerError):
    """An exchange query failed; the message is redacted and no ccxt exception is chained."""


class OrderRefused(Exception):
    """An order the broker will not send (too small, unknown symbol...): `reason` says why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


class OrderJournal(Protocol):
    """Where the live broker records the orders it submits, so that a restart recognises
    its own resting orders (`titan.engine.ledger.Ledger` is one)."""

    def record_order(self, order: Mapping[str, Any]) -> None: ...

    def update_order(self, client_id: str, status: str, exchange_id: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Balance:
    free: float
    used: float  # locked in open orders

    @property
    def total(self) -> float:
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    """An order as the exchange reports it."""

    exchange_id: str
    client_id: str | None
    symbol: str
    side: Side
    type: str
    amount: float
    filled: float
    price: float | None
    status: str  # open | closed | canceled | expired | rejected
    ts: int | None = None

    @classmethod
    def from_ccxt(cls, raw: Mapping[str, Any]) -> ExchangeOrder:
        side = raw.get("side")
        if side not in ("buy", "sell"):
            raise ValueError(f"order {raw.get('id')!r} has no side")
        return cls(
            exchange_id=str(raw["id"]),
            client_id=raw.get("clientOrderId"),
            symbol=str(raw["symbol"]),
            side=side,
            type=str(raw.get("type") or ""),
            amount=float(raw.get("amount") or 0.0),
            filled=float(raw.get("filled") or 0.0),
            price=float(raw["price"]) if raw.get("price") else None,
            status=str(raw.get("status") or "open"),
            ts=raw.get("timestamp"),
        )


@dataclass
class OrderWatch:
    """An order whose fills are still being read back."""

    order_id: str  # Titan's Order.id (or the client / exchange id of an adopted order)
    client_id: str | None
    exchange_id: str | None
    symbol: str
    side: Side
    trade_ids: set[str] = field(default_factory=set)
    booked: float = 0.0  # quantity of the trades seen so far
    status: str | None = None  # the exchange's status last seen (journalled)

    @property
    def key(self) -> str:
        return self.client_id or f"#{self.exchange_id}"

    def lookup_args(self) -> tuple[str, str, dict[str, str]]:
        """(id, symbol, params) for ccxt: by exchange id, else by client order id."""
        if self.exchange_id:
            return self.exchange_id, self.symbol, {}
        return "", self.symbol, {"clientOrderId": self.client_id or ""}


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    type: Literal["market", "limit"]
    side: Side
    amount: float
    price: float | None
    client_id: str


def prepare_request(
    exchange: Any,
    order: Order,
    reference: float | None,
    order_type: Literal["market", "limit"],
    limit_offset_bps: float,
    max_notional: float | None = None,
) -> OrderRequest:
    """The exchange request for `order` (markets loaded), or `OrderRefused`.

    `max_notional` is a last line of defence behind the Trader's risk limits: an order
    worth more at the reference price is refused, except flattening (which may close a
    position larger than one order)."""
    market = exchange.markets.get(order.symbol)
    if market is None:
        raise OrderRefused("unknown_symbol")
    kind: Literal["market", "limit"] = "limit"
    if order.type == "limit":
        assert order.limit_price is not None  # Order validation
        price: float | None = order.limit_price
    elif order.reason == "flatten" or order_type == "market":
        kind, price = "market", None
    elif reference is None:
        raise OrderRefused("no_reference_price")
    else:
        offset = limit_offset_bps * BPS if order.side == "buy" else -limit_offset_bps * BPS
        price = reference * (1 - offset)
    if price is not None:
        price = float(exchange.price_to_precision(order.symbol, price))
    amount = _amount(exchange, market, order)
    _check_notional(market, amount, price or reference)
    value = amount * (reference or price or 0.0)
    if max_notional is not None and order.reason != "flatten" and value > max_notional * 1.000001:
        raise OrderRefused("above_max_order_notional", f"{value:.8g} > {max_notional}")
    return OrderRequest(order.symbol, kind, order.side, amount, price, client_order_id(order.id))


def journal_row(order: Order, request: OrderRequest) -> dict[str, Any]:
    """`request` as a new row of the order journal (status `new`: not yet sent)."""
    return {
        "client_id": request.client_id,
        "order_id": order.id,
        "symbol": request.symbol,
        "side": request.side,
        "type": request.type,
        "amount": request.amount,
        "price": request.price,
        "status": "new",
        "ts": order.ts,
    }


def _limit(market: Mapping[str, Any], kind: str) -> float | None:
    value = ((market.get("limits") or {}).get(kind) or {}).get("min")
    return float(value) if value else None


def _amount(exchange: Any, market: Mapping[str, Any], order: Order) -> float:
    try:
        amount = float(exchange.amount_to_precision(order.symbol, order.quantity))
    except ccxt.InvalidOrder as exc:
        raise OrderRefused("below_min_amount", describe(exc)) from None
    minimum = _limit(market, "amount")
    if amount <= 0 or (minimum is not None and amount < minimum):
        raise OrderRefused("below_min_amount", f"{amount} < {minimum}")
    return amount


def _check_notional(market: Mapping[str, Any], amount: float, price: float | None) -> None:
    minimum = _limit(market, "cost")
    if price is not None and minimum is not None and amount * price < minimum:
        raise OrderRefused("below_min_notional", f"{amount * price:.8g} < {minimum}")


def trade_fill(
    watch: OrderWatch,
    trade: Mapping[str, Any],
    market: Mapping[str, Any],
    prices: Mapping[str, float],
    default_ts: int,
) -> Fill | None:
    """One exchange trade as a `Fill` with its fee in quote (see `live_broker`'s docstring);
    None (logged) for a trade that cannot be booked."""
    price, quantity = float(trade["price"]), float(trade["amount"])
    fee = trade.get("fee") or {}
    cost, currency = float(fee.get("cost") or 0.0), fee.get("currency")
    fee_quote = cost
    if currency == market["base"]:
        fee_quote = cost * price
        quantity -= cost if watch.side == "buy" else 0.0
    elif currency not in (None, market["quote"]) and cost:
        fee_quote = _convert_fee(cost, str(currency), market["quote"], prices, watch)
    if quantity <= 0 or price <= 0:
        log.error("fill_unusable", order_id=watch.order_id, trade_id=trade.get("id"))
        return None
    liquidity = trade.get("takerOrMaker")
    return Fill(
        watch.order_id,
        watch.symbol,
        int(trade.get("timestamp") or default_ts),
        watch.side,
        quantity,
        price,
        fee_quote,
        liquidity if liquidity in ("maker", "taker") else "taker",
    )


def _convert_fee(
    cost: float, currency: str, quote: str, prices: Mapping[str, float], watch: OrderWatch
) -> float:
    rate = prices.get(f"{currency}/{quote}")
    if rate is None:
        log.warning("fee_not_converted", order_id=watch.order_id, asset=currency, fee=cost)
        return 0.0
    return cost * rate


def order_fields(order: Order) -> dict[str, Any]:
    """The fields every order event carries."""
    return {
        "order_id": order.id,
        "symbol": order.symbol,
        "side": order.side,
        "quantity": order.quantity,
        "order_reason": order.reason,
    }
