"""The feeds' retry delays (`titan.data.exchange.Backoff`, used by `FeedCore` and the
websocket reconnect loop): exponential growth up to a cap, full jitter, longer for rate
limits."""

from __future__ import annotations

import random
import statistics

import ccxt
import pytest

from tests.unit.feeds.rig import fast_config
from titan.data.exchange import Backoff, call_with_retry
from titan.data.feeds.core import backoff_of

BACKOFF = Backoff(base_s=0.5, cap_s=30.0, rate_limit_factor=4.0, max_attempts=8)


class Highest(random.Random):
    """An rng whose `uniform(a, b)` is always `b`: the delay's ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_delay_ceiling_doubles_per_attempt_until_the_cap() -> None:
    ceilings = [BACKOFF.delay(attempt, Highest()) for attempt in range(9)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_full_jitter_varies_the_delay_within_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(0, 0.5), (3, 4.0), (10, 30.0)]:
        delays = [BACKOFF.delay(attempt, rng) for _ in range(2_000)]
        assert all(0.0 < d <= ceiling for d in delays)  # U(0, ceiling): 0 has probability 0
        assert len(set(delays)) == len(delays)  # no two reconnecting clients in lockstep
        assert statistics.mean(delays) == pytest.approx(ceiling / 2, rel=0.05)
        assert min(delays) < 0.05 * ceiling and max(delays) > 0.95 * ceiling


def test_rate_limits_wait_the_factor_longer_even_at_the_cap() -> None:
    for attempt in range(10):
        plain = BACKOFF.delay(attempt, Highest())
        limited = BACKOFF.delay(attempt, Highest(), rate_limited=True)
        assert limited == pytest.approx(plain * BACKOFF.rate_limit_factor)
    assert BACKOFF.delay(50, Highest(), rate_limited=True) == 120.0  # cap * factor


def test_the_feeds_backoff_follows_their_config_with_the_default_rate_limit_factor() -> None:
    backoff = backoff_of(fast_config(backoff_base_s=0.01, backoff_cap_s=0.2, rest_max_attempts=3))
    assert backoff == Backoff(base_s=0.01, cap_s=0.2, rate_limit_factor=4.0, max_attempts=3)
    assert [backoff.delay(a, Highest()) for a in range(6)] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.2]


def test_a_seeded_rng_gives_reproducible_delays() -> None:
    first = [BACKOFF.delay(a, random.Random(3)) for a in range(6)]
    assert first == [BACKOFF.delay(a, random.Random(3)) for a in range(6)]


async def test_retries_sleep_growing_delays_and_longer_ones_for_rate_limits() -> None:
    """`call_with_retry` backs off per attempt; RateLimitExceeded/DDoSProtection wait longer."""
    errors: list[Exception] = [
        ccxt.RequestTimeout("t"),
        ccxt.ExchangeNotAvailable("x"),
        ccxt.RateLimitExceeded("429"),
        ccxt.DDoSProtection("418"),
    ]
    slept: list[float] = []

    async def call() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = await call_with_retry(call, what="test", backoff=BACKOFF, rng=Highest(), sleep=sleep)
    assert result == "ok" and slept == [0.5, 1.0, 2.0 * 4, 4.0 * 4]


async def test_errors_that_are_not_transient_are_not_retried() -> None:
    slept: list[float] = []

    async def call() -> None:
        raise ccxt.BadSymbol("no such market")

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(ccxt.BadSymbol):
        await call_with_retry(call, what="test", backoff=BACKOFF, sleep=sleep)
    assert slept == []


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    """No OverflowError however many attempts a permissive retry setting allows."""
    assert BACKOFF.delay(5_000, Highest()) == 30.0
    assert BACKOFF.delay(5_000, Highest(), rate_limited=True) == 120.0
