"""ccxt exchange construction and the retry policy for its errors.

Error policy (from ccxt's hierarchy): the `NetworkError` family (RequestTimeout,
ExchangeNotAvailable, RateLimitExceeded, DDoSProtection ...) and the rest of the
`OperationFailed` family (garbled responses, internal errors) are retried with exponential
backoff and full jitter, longer for rate limits; the `ExchangeError` family
(BadSymbol, AuthenticationError ...) is not retried and propagates.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async
import structlog

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Transient failures worth retrying: ccxt's OperationFailed family = the NetworkError
# family (timeouts, rate limits, maintenance) plus garbled (BadResponse) and failed requests.
RETRYABLE = (ccxt.OperationFailed,)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: sleep U(0, min(cap, base * 2**attempt))."""

    base_s: float = 0.5
    cap_s: float = 30.0
    rate_limit_factor: float = 4.0
    max_attempts: int = 8

    def delay(self, attempt: int, rng: random.Random, rate_limited: bool = False) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 64))  # 2**1024 overflows
        if rate_limited:
            ceiling = min(self.cap_s * self.rate_limit_factor, ceiling * self.rate_limit_factor)
        return rng.uniform(0.0, ceiling)


DEFAULT_BACKOFF = Backoff()


def make_exchange(name: str, api_url: str | None = None, **options: Any) -> Any:
    """An async ccxt exchange with rate limiting on; `api_url` redirects every REST API."""
    if name not in ccxt_async.exchanges:
        raise ValueError(f"unknown exchange {name!r}")
    params: dict[str, Any] = {"enableRateLimit": True, "timeout": 10_000}
    params.update(options)
    exchange = getattr(ccxt_async, name)(params)
    _reject_malformed_json(exchange)
    if api_url is not None:
        redirect_urls(exchange, api_url)
    return exchange


def _reject_malformed_json(exchange: Any) -> None:
    """ccxt turns an unparsable body into an empty result; make it a retryable BadResponse."""
    parse_json = exchange.parse_json

    def strict_parse_json(http_response: Any) -> Any:
        parsed = parse_json(http_response)
        if parsed is None and isinstance(http_response, str) and http_response.strip():
            raise ccxt.BadResponse(f"{exchange.id}: malformed JSON response")
        return parsed

    exchange.parse_json = strict_parse_json


def redirect_urls(exchange: Any, api_url: str) -> None:
    """Point every REST endpoint of `exchange` at `api_url` (scheme and host), keeping paths."""
    exchange.urls["api"] = _redirect(exchange.urls["api"], api_url.rstrip("/"))


def _redirect(node: Any, base: str) -> Any:
    if isinstance(node, dict):
        return {key: _redirect(value, base) for key, value in node.items()}
    if isinstance(node, str) and node.startswith("http"):
        parts = urlsplit(node)
        return base + parts.path
    return node


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    backoff: Backoff = DEFAULT_BACKOFF,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `call`, retrying ccxt network errors with backoff; other errors propagate."""
    rng = rng or random.Random()
    for attempt in range(backoff.max_attempts):
        try:
            return await call()
        except RETRYABLE as exc:
            if attempt + 1 == backoff.max_attempts:
                raise
            rate_limited = isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
            delay = backoff.delay(attempt, rng, rate_limited)
            log.warning(
                "exchange_retry",
                what=what,
                error=type(exc).__name__,
                attempt=attempt + 1,
                delay_s=round(delay, 3),
                rate_limited=rate_limited,
            )
            await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
