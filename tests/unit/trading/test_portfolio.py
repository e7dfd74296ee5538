"""Portfolio accounting: averages, realized PnL, round trips, persistence, identities."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titan.trading import Fill, Portfolio

SYMBOLS = ("BTC/USDT", "ETH/USDT")


def _fill(side: str, qty: float, price: float, fee: float = 0.0, ts: int = 0) -> Fill:
    return Fill(f"o{ts}", "BTC/USDT", ts, side, qty, price, fee)  # type: ignore[arg-type]


def test_adding_moves_average_price_and_reducing_realizes_pnl() -> None:
    book = Portfolio(1_000.0)
    book.apply(_fill("buy", 1.0, 100.0))
    book.apply(_fill("buy", 3.0, 120.0))
    assert book.positions["BTC/USDT"].avg_price == pytest.approx(115.0)
    assert book.apply(_fill("sell", 2.0, 130.0)) == []
    assert book.realized_pnl == pytest.approx(30.0)
    assert book.positions["BTC/USDT"].avg_price == pytest.approx(115.0)
    assert book.quantity("BTC/USDT") == 2.0


def test_round_trip_accumulates_partial_exits_and_all_fees() -> None:
    book = Portfolio(1_000.0)
    book.apply(_fill("buy", 2.0, 100.0, fee=0.2, ts=1))
    book.apply(_fill("sell", 1.0, 110.0, fee=0.1, ts=2))
    [trip] = book.apply(_fill("sell", 1.0, 90.0, fee=0.1, ts=3))
    assert (trip.direction, trip.entry_ts, trip.exit_ts, trip.quantity) == ("long", 1, 3, 2.0)
    assert trip.exit_price == pytest.approx(100.0)
    assert trip.pnl == pytest.approx(0.0)
    assert trip.fees == pytest.approx(0.4)
    assert trip.net_pnl == pytest.approx(-0.4) and not trip.won
    assert (book.trade_count, book.win_count, book.win_rate) == (1, 0, 0.0)


def test_flip_closes_the_trip_and_opens_the_rest_short_with_fee_split() -> None:
    book = Portfolio(1_000.0)
    book.apply(_fill("buy", 1.0, 100.0, fee=0.0))
    [trip] = book.apply(_fill("sell", 3.0, 110.0, fee=0.3))
    assert trip.pnl == pytest.approx(10.0) and trip.fees == pytest.approx(0.1)
    short = book.positions["BTC/USDT"]
    assert short.quantity == pytest.approx(-2.0) and short.avg_price == 110.0
    assert short.fees == pytest.approx(0.2)
    [cover] = book.apply(_fill("buy", 2.0, 100.0))
    assert cover.direction == "short" and cover.pnl == pytest.approx(20.0)


def test_rounding_residue_does_not_leave_a_phantom_position() -> None:
    book = Portfolio(1_000.0)
    book.apply(_fill("buy", 0.1, 100.0))
    book.apply(_fill("buy", 0.2, 100.0))
    [_] = book.apply(_fill("sell", 0.3, 100.0))
    assert book.positions == {}


def test_equity_requires_a_price_for_every_open_position() -> None:
    book = Portfolio(1_000.0)
    book.apply(_fill("buy", 1.0, 100.0))
    with pytest.raises(KeyError, match="BTC/USDT"):
        book.equity({})


def test_trade_history_is_bounded_but_counters_count_everything() -> None:
    book = Portfolio(1_000.0, max_trades=2)
    for i in range(5):
        book.apply(_fill("buy", 1.0, 100.0, ts=2 * i))
        book.apply(_fill("sell", 1.0, 101.0, ts=2 * i + 1))
    assert len(book.trades) == 2 and book.trade_count == 5 and book.win_count == 5


fills = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from(["buy", "sell", "close"]),
        st.floats(1e-3, 100.0),
        st.floats(1.0, 10_000.0),
        st.floats(0.0, 50.0),  # fee in bps
    ),
    max_size=40,
)


def _to_fills(steps: list[tuple[str, str, float, float, float]]) -> list[Fill]:
    book, out = Portfolio(0.0), []
    for ts, (symbol, action, qty, price, fee_bps) in enumerate(steps):
        held = book.quantity(symbol)
        if action == "close":
            if held == 0.0:
                continue
            action, qty = ("sell" if held > 0 else "buy"), abs(held)
        fill = Fill(f"o{ts}", symbol, ts, action, qty, price, qty * price * fee_bps * 1e-4)  # type: ignore[arg-type]
        book.apply(fill)
        out.append(fill)
    return out


@settings(max_examples=200, deadline=None)
@given(fills, st.floats(1.0, 10_000.0), st.floats(1.0, 10_000.0))
def test_accounting_identities_hold_over_random_fills(
    steps: list[tuple[str, str, float, float, float]], mark_a: float, mark_b: float
) -> None:
    """cash + cost basis == start + realized - fees; equity == that + unrealized; no NaN."""
    book = Portfolio.replay(10_000.0, _to_fills(steps))
    prices = dict(zip(SYMBOLS, (mark_a, mark_b), strict=True))
    scale = 10_000.0 + sum(q * p for _, _, q, p, _ in steps)
    basis = sum(p.quantity * p.avg_price for p in book.positions.values())
    assert math.isclose(
        book.cash + basis, 10_000.0 + book.realized_pnl - book.fees_paid, abs_tol=1e-9 * scale
    )
    equity = book.equity(prices)
    expected = 10_000.0 + book.realized_pnl + book.unrealized_pnl(prices) - book.fees_paid
    assert math.isfinite(equity)
    assert math.isclose(equity, expected, abs_tol=1e-9 * scale)
    net = sum(t.net_pnl for t in book.trades)
    assert math.isclose(net, sum(t.pnl - t.fees for t in book.trades), abs_tol=1e-9 * scale)


@settings(max_examples=100, deadline=None)
@given(fills, st.integers(0, 40))
def test_state_dict_resume_and_fill_replay_agree(
    steps: list[tuple[str, str, float, float, float]], cut: int
) -> None:
    """Saving to JSON mid-way, loading and continuing equals re-applying every fill."""
    fill_list = _to_fills(steps)
    first = Portfolio(10_000.0)
    for fill in fill_list[:cut]:
        first.apply(fill)
    resumed = Portfolio(1.0)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert resumed.state_dict() == first.state_dict()
    for fill in fill_list[cut:]:
        resumed.apply(fill)
    replayed = Portfolio.replay(10_000.0, fill_list)
    assert resumed.state_dict() == replayed.state_dict()
    assert list(resumed.trades) == list(replayed.trades)
