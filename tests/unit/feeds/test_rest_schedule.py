"""RestFeed's poll schedule (`_next_poll`) on a simulated clock."""

from __future__ import annotations

from pathlib import Path

from tests.unit.feeds.rig import MINUTE, SYMBOLS, fast_config
from titan.clock import SimClock
from titan.data.feeds import RestFeed
from titan.data.store import CandleStore

CLOSE = 1_000 * MINUTE  # the close of the oldest candle not received yet
DELAY = 2_000  # fast_config: poll_delay_s = poll_retry_s = 2.0, assemble_grace_s = 150.0


def feed_at(now: int, polled_at: int, tmp_path: Path) -> RestFeed:
    clock = SimClock(now)
    feed = RestFeed(lambda: None, SYMBOLS, "1m", clock, fast_config(), CandleStore(tmp_path))
    feed.core.start_ts = CLOSE - MINUTE
    feed.polled_at = polled_at
    return feed


def test_polls_delay_after_the_close(tmp_path: Path) -> None:
    assert feed_at(CLOSE - 30_000, CLOSE - 58_000, tmp_path)._next_poll() == CLOSE + DELAY


def test_a_missing_candle_is_polled_again_every_retry_period(tmp_path: Path) -> None:
    feed = feed_at(CLOSE + DELAY + 500, CLOSE + DELAY, tmp_path)
    assert feed._next_poll() == CLOSE + DELAY + 500 + 2_000


def test_a_poll_time_passed_while_busy_is_polled_at_once(tmp_path: Path) -> None:
    """The feed came back (a slow store write, a slow consumer) after the close's poll
    time: poll now, not a retry period (or, past the deadline, a whole candle) later."""
    for now in (CLOSE + DELAY + 30_000, CLOSE + 200_000):
        feed = feed_at(now, CLOSE - 58_000, tmp_path)
        assert feed._next_poll() <= now


def test_past_the_deadline_a_polled_missing_candle_waits_for_the_grid(tmp_path: Path) -> None:
    now = CLOSE + 200_000
    feed = feed_at(now, now - 1_000, tmp_path)
    assert feed._next_poll() == CLOSE + 4 * MINUTE + DELAY
