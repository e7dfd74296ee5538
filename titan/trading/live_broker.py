"""`CcxtBroker`: the live `Broker` on a ccxt async exchange (spot; Binance's API is the one
tested, against `titan.testing.fake_exchange`).

Placing orders (`submit`):

- the client order id is `live_orders.client_order_id(order.id)`: deterministic and Binance-safe;
- the amount is rounded down to the market's step and limit prices to its tick; an order
  below the market's minimum amount or notional, or (flattening aside) above the hard cap
  `max_order_notional` at the reference price, is rejected here, never sent;
- `order.type == "limit"` uses its limit price; otherwise `order_type = "limit"` places a
  limit at the reference price moved `limit_offset_bps` to the favourable side (buys
  below, sells above) and `"market"` a market order; flattening is always a market order;
- idempotent: network failures are retried with backoff and every retry first looks the
  order up by its client id, so an order that reached the exchange is never placed twice
  (a "Duplicate order sent." answer also recovers the existing order);
- an exchange error (insufficient funds, invalid order, bad credentials ...) becomes an
  `order_rejected` event and no fill, never an exception; when retries run out the order's
  fate is unknown: `order_unknown`, and the order is watched by its client id;
- journalled: with a `journal` (the ledger), every order is recorded before it is sent
  (status `new`) and each status the exchange reports for it afterwards (`rejected`,
  `unknown` as above), so that reconciliation after a restart recognises Titan's own
  resting orders.

Fills are read back from the order's trades (the FULL response, else `fetch_order_trades`),
one `Fill` per trade, fee in quote: a quote commission as is; a base commission on a buy is
received quantity the account never gets, so the fill carries the net quantity and a fee of
commission * price (cash and position then match the exchange exactly); another asset is
converted at its reference price when known (else 0, with a warning).

Resting orders are watched (bounded): `poll_fills()` returns their new fills; a new order
for a symbol first cancels that symbol's resting orders and returns their late fills ahead
of its own. `cancel_all()` cancels every open order of the traded symbols, Titan's or not;
the cancelled orders' late fills come with the next `poll_fills()` or `submit()`.
Book fills from `poll_fills` with `Trader.poll()` (the engine does it every interval).

Every error text is passed through `redact_error` (registered secrets, request signatures)
before it is logged or raised.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal, TypeVar

import ccxt
import structlog

from titan.config.live import LiveConfig
from titan.data.exchange import Backoff, call_with_retry, make_exchange
from titan.ops.secrets import Credentials
from titan.trading.live_orders import (
    Balance,
    ExchangeOrder,
    LiveBrokerError,
    OrderJournal,
    OrderRefused,
    OrderRequest,
    OrderWatch,
    describe,
    journal_row,
    order_fields,
    prepare_request,
    trade_fill,
)
from titan.trading.types import Fill, Order

log = structlog.get_logger(__name__)
T = TypeVar("T")


class CcxtBroker:
    """Places, reads back and cancels orders of `symbols` on a ccxt async `exchange`."""

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        *,
        order_type: Literal["market", "limit"] = "market",
        limit_offset_bps: float = 0.0,
        max_order_notional: float | None = None,
        backoff: Backoff | None = None,
        max_tracked_orders: int = 1_000,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        journal: OrderJournal | None = None,
    ) -> None:
        self.exchange = exchange
        self.journal = journal
        self.symbols = tuple(symbols)
        self.order_type = order_type
        self.limit_offset_bps = limit_offset_bps
        self.max_order_notional = max_order_notional
        self.backoff = backoff or Backoff(max_attempts=5)
        self.max_tracked_orders = max_tracked_orders
        self._retry: dict[str, Any] = {"backoff": self.backoff, "rng": rng or random.Random()}
        if sleep is not None:
            self._retry["sleep"] = sleep
        self._prices: dict[str, float] = {}
        self._ts = 0
        self._watches: dict[str, OrderWatch] = {}
        self._late: list[Fill] = []
        self._markets_loaded = False

    # -- Broker protocol -----------------------------------------------------------------------

    def set_prices(self, prices: Mapping[str, float], ts: int) -> None:
        self._prices.update(prices)
        self._ts = ts

    async def submit(self, order: Order) -> list[Fill]:
        """Place `order` (module docstring); return its fills, after any late fills."""
        fills = self._drain_late() + await self._cancel_resting(order.symbol)
        try:
            request = await self._prepare(order)
        except OrderRefused as rejected:  # never sent: a warning, not an exchange error
            log.warning(
                "order_rejected",
                **order_fields(order),
                reason=rejected.reason,
                error=rejected.detail,
            )
            return fills
        if self.journal is not None:
            self.journal.record_order(journal_row(order, request))
        placed = await self._place_logged(order, request)
        if placed is not None:
            watch = OrderWatch(
                order.id, request.client_id, str(placed["id"]), order.symbol, order.side
            )
            fills += await self._settle(watch, placed)
        return fills

    async def cancel_all(self) -> int:
        """Cancel every open order of the traded symbols; never raises (failures are logged)."""
        count = 0
        for symbol in self.symbols:
            try:
                count += await self._cancel_symbol(symbol)
            except ccxt.BaseError as exc:
                log.error("orders_cancel_failed", symbol=symbol, error=describe(exc))
        log.warning("orders_cancelled", count=count, symbols=list(self.symbols))
        return count

    # -- queries for reconciliation and the engine ---------------------------------------------

    async def start(self) -> None:
        """Load the markets and check every symbol is a tradable spot market."""
        await self._query("load_markets", self._ensure_markets)
        for symbol in self.symbols:
            market = self.exchange.markets.get(symbol)
            if market is None or not market.get("spot"):
                raise LiveBrokerError(f"{symbol} is not a spot market on {self.exchange.id}")
        log.info("broker_ready", exchange=self.exchange.id, symbols=list(self.symbols))

    async def poll_fills(self) -> list[Fill]:
        """New fills of watched orders (and late fills of cancelled ones); never raises."""
        fills = self._drain_late()
        for watch in list(self._watches.values()):
            raw = await self._lookup_quietly(watch)
            if raw is not None:
                fills += await self._settle(watch, raw)
        return fills

    async def fetch_balances(self) -> dict[str, Balance]:
        """Every asset with a non-zero balance: free and used (locked in orders)."""
        raw = await self._query("fetch_balance", self.exchange.fetch_balance)
        free, used = raw.get("free") or {}, raw.get("used") or {}
        balances = {
            asset: Balance(float(free.get(asset) or 0.0), float(used.get(asset) or 0.0))
            for asset in set(free) | set(used)
        }
        return {asset: b for asset, b in sorted(balances.items()) if b.total != 0.0}

    async def fetch_open_orders(self) -> list[ExchangeOrder]:
        """Every open order of the traded symbols."""
        await self._query("load_markets", self._ensure_markets)
        orders: list[ExchangeOrder] = []
        for symbol in self.symbols:
            raw = await self._query(
                "fetch_open_orders", partial(self.exchange.fetch_open_orders, symbol)
            )
            orders += [ExchangeOrder.from_ccxt(o) for o in raw]
        return orders

    async def cancel_order(self, order: ExchangeOrder) -> bool:
        """Cancel one open order; False if it was no longer open."""
        cancel = partial(self.exchange.cancel_order, order.exchange_id, order.symbol)
        try:
            await self._call("cancel_order", cancel)
        except ccxt.OrderNotFound:
            return False
        except ccxt.BaseError as exc:
            error = LiveBrokerError(f"cancel_order failed: {describe(exc)}")
        else:
            log.warning("order_cancelled", exchange_id=order.exchange_id, client_id=order.client_id)
            return True
        raise error

    async def adopt(self, order: ExchangeOrder, order_id: str | None = None) -> None:
        """Watch an open order placed before this start (its fills so far are not booked)."""
        watch = OrderWatch(
            order_id or order.client_id or order.exchange_id,
            order.client_id,
            order.exchange_id,
            order.symbol,
            order.side,
        )
        if order.filled > 0:
            trades = await self._query("fetch_order_trades", lambda: self._trades(watch))
            watch.trade_ids = {str(t.get("id")) for t in trades}
            watch.booked = order.filled
        self._track(watch)

    @property
    def watched(self) -> int:
        return len(self._watches)

    async def close(self) -> None:
        await self.exchange.close()

    # -- preparing and placing an order (idempotent) -------------------------------------------

    async def _prepare(self, order: Order) -> OrderRequest:
        try:
            await self._call("load_markets", self._ensure_markets)
        except ccxt.BaseError as exc:
            raise OrderRefused("markets_unavailable", describe(exc)) from None
        reference = self._prices.get(order.symbol)
        return prepare_request(
            self.exchange,
            order,
            reference,
            self.order_type,
            self.limit_offset_bps,
            self.max_order_notional,
        )

    async def _place_logged(self, order: Order, request: OrderRequest) -> dict[str, Any] | None:
        try:
            placed = await self._place(request)
        except ccxt.ExchangeError as exc:
            log.error(
                "order_rejected", **order_fields(order), reason="exchange", error=describe(exc)
            )
            self._journal(request.client_id, "rejected")
            return None
        except ccxt.BaseError as exc:
            log.error("order_unknown", **order_fields(order), error=describe(exc))
            self._journal(request.client_id, "unknown")
            self._track(OrderWatch(order.id, request.client_id, None, order.symbol, order.side))
            return None
        log.info(
            "order_submitted",
            **order_fields(order),
            client_id=request.client_id,
            exchange_id=str(placed["id"]),
            order_type=request.type,
            amount=request.amount,
            price=request.price,
            status=placed.get("status"),
        )
        return placed

    async def _place(self, request: OrderRequest) -> dict[str, Any]:
        attempts = 0

        async def attempt() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                found = await self._find(request)
                if found is not None:
                    log.warning("order_recovered", client_id=request.client_id, attempt=attempts)
                    return found
            return await self._create(request)

        return await self._call("create_order", attempt)

    async def _create(self, request: OrderRequest) -> dict[str, Any]:
        params = {"clientOrderId": request.client_id}
        try:
            placed: dict[str, Any] = await self.exchange.create_order(
                request.symbol, request.type, request.side, request.amount, request.price, params
            )
            return placed
        except ccxt.InvalidOrder as exc:
            if "Duplicate order" not in str(exc):
                raise
        found = await self._find(request)
        if found is None:
            raise ccxt.InvalidOrder(f"duplicate client order id {request.client_id}")
        log.warning("order_recovered", client_id=request.client_id, duplicate=True)
        return found

    async def _find(self, request: OrderRequest) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.exchange.fetch_order(
                "", request.symbol, {"clientOrderId": request.client_id}
            )
            return found
        except ccxt.OrderNotFound:
            return None

    # -- reading fills back ----------------------------------------------------------------------

    async def _settle(self, watch: OrderWatch, raw: Mapping[str, Any]) -> list[Fill]:
        """Book `raw`'s new trades for `watch`; keep watching it while it is open."""
        fills = await self._new_fills(watch, raw)
        if fills:
            quantity = sum(f.quantity for f in fills)
            log.info(
                "order_filled",
                order_id=watch.order_id,
                symbol=watch.symbol,
                side=watch.side,
                quantity=quantity,
                price=sum(f.quantity * f.price for f in fills) / quantity,
                fee=sum(f.fee for f in fills),
                status=raw.get("status"),
            )
        self._journal_status(watch, raw.get("status"))
        if raw.get("status") == "open":
            self._track(watch)
        else:
            self._watches.pop(watch.key, None)
        return fills

    async def _new_fills(self, watch: OrderWatch, raw: Mapping[str, Any]) -> list[Fill]:
        trades = list(raw.get("trades") or [])
        filled = float(raw.get("filled") or 0.0)
        if filled > watch.booked + 1e-12 and sum(float(t["amount"]) for t in trades) < filled:
            try:
                trades = await self._call("fetch_order_trades", lambda: self._trades(watch))
            except ccxt.BaseError as exc:
                log.warning(
                    "order_trades_unavailable", order_id=watch.order_id, error=describe(exc)
                )
                return []
        fills: list[Fill] = []
        for trade in trades:
            trade_id = str(trade.get("id"))
            if trade_id in watch.trade_ids:
                continue
            watch.trade_ids.add(trade_id)
            watch.booked += float(trade["amount"])
            market = self.exchange.markets[watch.symbol]
            ts = raw.get("timestamp") or self._ts
            fill = trade_fill(watch, trade, market, self._prices, ts)
            if fill is not None:
                fills.append(fill)
        return fills

    async def _trades(self, watch: OrderWatch) -> list[dict[str, Any]]:
        exchange_id = watch.exchange_id or str((await self._lookup(watch))["id"])
        watch.exchange_id = exchange_id
        trades: list[dict[str, Any]] = await self.exchange.fetch_order_trades(
            exchange_id, watch.symbol
        )
        return trades

    # -- resting orders ------------------------------------------------------------------------

    async def _cancel_resting(self, symbol: str) -> list[Fill]:
        """Cancel `symbol`'s watched orders (one working order per symbol); their late fills."""
        fills: list[Fill] = []
        for watch in [w for w in self._watches.values() if w.symbol == symbol]:
            cancel = partial(self.exchange.cancel_order, *watch.lookup_args())
            try:
                raw = await self._call("cancel_order", cancel)
            except ccxt.OrderNotFound:  # filled or gone meanwhile
                raw = await self._lookup_quietly(watch)
            except ccxt.BaseError as exc:
                log.error("order_cancel_failed", order_id=watch.order_id, error=describe(exc))
                continue
            if raw is not None:
                fills += await self._settle(watch, raw)
        return fills

    async def _cancel_symbol(self, symbol: str) -> int:
        await self._call("load_markets", self._ensure_markets)
        still_open = await self._call(
            "fetch_open_orders", partial(self.exchange.fetch_open_orders, symbol)
        )
        if not still_open:
            return 0
        try:
            cancelled = await self._call(
                "cancel_all_orders", partial(self.exchange.cancel_all_orders, symbol)
            )
        except ccxt.OrderNotFound:  # nothing open any more (an earlier try went through)
            cancelled = still_open
        for watch in [w for w in self._watches.values() if w.symbol == symbol]:
            raw = await self._lookup_quietly(watch)
            if raw is not None:
                self._late += await self._settle(watch, raw)
        return len(cancelled)

    async def _lookup(self, watch: OrderWatch) -> dict[str, Any]:
        found: dict[str, Any] = await self.exchange.fetch_order(*watch.lookup_args())
        return found

    async def _lookup_quietly(self, watch: OrderWatch) -> dict[str, Any] | None:
        try:
            return await self._call("fetch_order", lambda: self._lookup(watch))
        except ccxt.OrderNotFound:
            log.error("order_not_found", order_id=watch.order_id, client_id=watch.client_id)
            self._watches.pop(watch.key, None)
        except ccxt.BaseError as exc:
            log.warning("order_poll_failed", order_id=watch.order_id, error=describe(exc))
        return None

    def _track(self, watch: OrderWatch) -> None:
        if watch.key not in self._watches and len(self._watches) >= self.max_tracked_orders:
            log.error("order_watch_full", order_id=watch.order_id, limit=self.max_tracked_orders)
            return
        self._watches[watch.key] = watch

    def _journal_status(self, watch: OrderWatch, status: object) -> None:
        """Journal a status of a watched order the first time the exchange reports it."""
        if status is not None and status != watch.status and watch.client_id is not None:
            watch.status = str(status)
            self._journal(watch.client_id, watch.status, watch.exchange_id)

    def _journal(self, client_id: str, status: str, exchange_id: str | None = None) -> None:
        if self.journal is not None:
            self.journal.update_order(client_id, status, exchange_id)

    def _drain_late(self) -> list[Fill]:
        fills, self._late = self._late, []
        return fills

    # -- plumbing ------------------------------------------------------------------------------

    async def _ensure_markets(self) -> None:
        if not self._markets_loaded:
            await self.exchange.load_markets()
            self._markets_loaded = True

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await call_with_retry(call, what=what, **self._retry)

    async def _query(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """`_call`, with ccxt errors turned into a redacted `LiveBrokerError`."""
        try:
            return await self._call(what, call)
        except ccxt.BaseError as exc:
            error = LiveBrokerError(f"{what} failed: {describe(exc)}")
        raise error  # outside the handler: the unredacted ccxt exception is not chained


def make_live_broker(
    config: LiveConfig,
    symbols: Sequence[str],
    credentials: Credentials,
    *,
    max_order_notional: float | None = None,
    backoff: Backoff | None = None,
) -> CcxtBroker:
    """A `CcxtBroker` on a rate-limited ccxt exchange built from `config` and `credentials`.

    Pass `trading.max_order_notional` as `max_order_notional` (a hard cap behind the risk
    limits); `backoff` defaults to `Backoff(max_attempts=config.retry_attempts)`."""
    exchange = make_exchange(
        config.exchange,
        config.api_url,
        timeout=config.timeout_ms,
        options={
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,  # a signed sapi call; markets are enough
            "fetchMargins": False,
            "recvWindow": config.recv_window_ms,
        },
        **credentials.ccxt_params(),
    )
    return CcxtBroker(
        exchange,
        symbols,
        order_type=config.order_type,
        limit_offset_bps=config.limit_offset_bps,
        max_order_notional=max_order_notional,
        backoff=backoff or Backoff(max_attempts=config.retry_attempts),
        max_tracked_orders=config.max_tracked_orders,
    )
