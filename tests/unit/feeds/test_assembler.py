"""IntervalAssembler: completion, deadlines, ordering, late candles, tradability."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from titan.data.candle import Candle
from titan.data.feeds.assembler import IntervalAssembler

STEP = 60_000
GRACE = 10_000
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def candle(symbol: str, ts: int) -> Candle:
    return Candle(symbol, ts, 1.0, 1.0, 1.0, 1.0, 1.0)


def assembler(**kwargs: int) -> IntervalAssembler:
    options = {"grace_ms": GRACE, "stale_ms": 90_000, **kwargs}
    return IntervalAssembler(SYMBOLS, STEP, **options)


def test_interval_goes_out_once_every_symbol_reported_and_it_closed() -> None:
    a = assembler()
    a.add(candle("ETH/USDT", 0))
    assert a.drain(STEP) == []  # BTC missing, deadline not reached
    a.add(candle("BTC/USDT", 0))
    assert a.drain(STEP - 1) == []  # complete but the clock says it has not closed
    [interval] = a.drain(STEP)
    assert interval.ts == 0 and [c.symbol for c in interval.candles] == list(SYMBOLS)


def test_deadline_emits_the_symbols_that_arrived_and_counts_a_partial() -> None:
    a = assembler()
    a.add(candle("BTC/USDT", 0))
    assert a.next_wakeup() == STEP + GRACE
    assert a.drain(STEP + GRACE - 1) == []
    [interval] = a.drain(STEP + GRACE)
    assert [c.symbol for c in interval.candles] == ["BTC/USDT"] and a.partial == 1


def test_late_candle_after_its_interval_went_out_is_refused_and_counted() -> None:
    a = assembler()
    a.add(candle("BTC/USDT", 0))
    a.drain(STEP + GRACE)
    assert a.add(candle("ETH/USDT", 0)) is False
    assert a.late["ETH/USDT"] == 1 and a.backlog == 0


def test_symbol_that_moved_past_a_ts_completes_it() -> None:
    a = assembler()
    a.add(candle("BTC/USDT", 0))
    a.add(candle("ETH/USDT", STEP))  # ETH has no candle at 0 (exchange gap)
    a.add(candle("BTC/USDT", STEP))
    emitted = a.drain(2 * STEP)
    assert [i.ts for i in emitted] == [0, STEP] and a.partial == 0


def test_intervals_go_out_in_order_each_at_its_own_deadline() -> None:
    a = assembler()
    a.add(candle("BTC/USDT", 0))
    a.add(candle("BTC/USDT", STEP))  # ETH silent: both intervals wait for it
    assert a.drain(STEP + GRACE - 1) == []
    assert [i.ts for i in a.drain(2 * STEP)] == [0]  # STEP's deadline is later
    assert a.next_wakeup() == 2 * STEP + GRACE
    assert [i.ts for i in a.drain(2 * STEP + GRACE)] == [STEP]


def test_failed_symbol_is_no_longer_waited_for() -> None:
    a = assembler()
    a.add(candle("BTC/USDT", 0))
    a.remove_symbol("ETH/USDT")
    assert [i.ts for i in a.drain(STEP)] == [0]


def test_hold_suspends_deadlines_but_not_complete_intervals() -> None:
    a = assembler()
    a.hold = 1
    a.add(candle("BTC/USDT", 0))
    assert a.drain(10 * STEP) == [] and a.next_wakeup() is None
    a.add(candle("ETH/USDT", 0))
    assert [i.ts for i in a.drain(10 * STEP)] == [0]


def test_nothing_at_or_before_the_start_point_is_emitted() -> None:
    a = assembler()
    a.start_after(STEP)
    assert a.add(candle("BTC/USDT", STEP)) is False
    assert a.add(candle("BTC/USDT", 2 * STEP)) is True


def test_warmup_and_stale_intervals_are_not_tradable() -> None:
    a = assembler(stale_ms=30_000)
    a.warmup_until = 0
    for ts in (0, STEP, 2 * STEP):
        a.add(candle("BTC/USDT", ts))
        a.add(candle("ETH/USDT", ts))
    now = 3 * STEP + 20_000  # candle 2*STEP closed 20 s ago, STEP 80 s ago
    assert [(i.ts, i.tradable) for i in a.drain(now)] == [
        (0, False),
        (STEP, False),
        (2 * STEP, True),
    ]


def test_pending_is_bounded_by_emitting_the_oldest() -> None:
    a = assembler(max_pending=10)
    for index in range(12):
        a.add(candle("BTC/USDT", index * STEP))
    emitted = a.drain(0)  # nothing has closed, yet the bound forces the oldest out
    assert [i.ts for i in emitted] == [0, STEP] and a.backlog == 10


arrivals = st.lists(
    st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 30), st.integers(0, 3 * STEP)),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(arrivals)
def test_never_emits_a_ts_twice_or_out_of_order(events: list[tuple[str, int, int]]) -> None:
    """Random per-symbol sequences, random arrival interleaving and clock jumps."""
    a = assembler()
    sent: dict[str, int] = {}
    now, emitted, seen = 0, [], set()
    for symbol, index, jump in events:
        ts = max(index, sent.get(symbol, -1) + 1) * STEP  # each symbol's candles ascend
        sent[symbol] = ts // STEP
        a.add(candle(symbol, ts))
        now += jump
        emitted.extend(a.drain(now))
    emitted.extend(a.drain(now + 100 * STEP))
    stamps = [i.ts for i in emitted]
    assert stamps == sorted(set(stamps))
    for interval in emitted:
        for c in interval.candles:
            assert (c.symbol, c.ts) not in seen and c.ts == interval.ts
            seen.add((c.symbol, c.ts))
    assert a.backlog == 0
