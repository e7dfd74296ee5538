"""Trader orchestration: sizing -> risk -> broker -> portfolio, kill switch, flatten, resume."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titan.config.trading import TradingConfig
from titan.trading import Portfolio, RiskReason, SimBroker, Trader

MINUTE = 60_000
DAY = 86_400_000
BTC, ETH = "BTC/USDT", "ETH/USDT"
LOOSE: dict[str, Any] = {
    "max_position_notional": 1e9,
    "max_order_notional": 1e9,
    "min_order_notional": 10.0,
    "max_fraction": 0.5,
    "daily_loss_limit": 1.0,
}
# (symbol, ts, price, prob_up, confidence): rallies, sell-offs, a flip to neutral.
SCRIPT = [
    (BTC, 0, 100.0, 0.8, 1.0),
    (ETH, 0, 10.0, 0.6, 0.5),
    (BTC, MINUTE, 104.0, 0.7, 1.0),
    (ETH, MINUTE, 9.5, 0.3, 1.0),
    (BTC, 2 * MINUTE, 101.0, 0.5, 1.0),
    (ETH, 2 * MINUTE, 9.9, 0.9, 0.8),
    (BTC, 3 * MINUTE, 99.0, 0.95, 1.0),
    (ETH, 3 * MINUTE, 10.4, 0.51, 1.0),
]


def _trader(**overrides: Any) -> Trader:
    config = TradingConfig(**{**LOOSE, **overrides})
    broker = SimBroker(fee_bps=config.fee_bps, slippage_bps=config.slippage_bps)
    return Trader(config, broker, interval_ms=MINUTE)


async def _run(trader: Trader, script: list[tuple[str, int, float, float, float]]) -> list[Any]:
    fills = []
    for step in script:
        fills += await trader.on_forecast(*step)
    return fills


async def test_forecast_buys_the_sized_target_at_slipped_price() -> None:
    trader = _trader(fee_bps=4.0, slippage_bps=1.0)
    [fill] = await trader.on_forecast(BTC, 0, 100.0, 0.75, 1.0)  # fraction 0.5 -> 5000 quote
    assert (fill.order_id, fill.side, fill.quantity) == ("BTC/USDT-0-0", "buy", 50.0)
    assert fill.price == pytest.approx(100.01)
    assert trader.portfolio.cash == pytest.approx(10_000.0 - 50 * 100.01 * 1.0004)
    report = trader.last_report
    assert report is not None and report.orders[0].reason == "forecast"
    assert report.verdict is not None and report.verdict.requested == 50.0


async def test_order_limit_clip_is_reported() -> None:
    trader = _trader(max_order_notional=2_500.0)
    [fill] = await trader.on_forecast(BTC, 0, 100.0, 0.75, 1.0)
    assert fill.quantity == pytest.approx(25.0)
    assert trader.last_report is not None
    assert trader.last_report.reasons == (RiskReason.ORDER_LIMIT,)


async def test_small_rebalance_is_skipped_as_dust() -> None:
    trader = _trader()
    await trader.on_forecast(BTC, 0, 100.0, 0.75, 1.0)
    assert await trader.on_forecast(BTC, MINUTE, 100.0, 0.75, 1.0) == []
    assert trader.last_report is not None
    assert trader.last_report.reasons == (RiskReason.DUST,)


async def test_long_only_bearish_forecast_sells_to_flat_and_records_the_trip() -> None:
    trader = _trader()
    await trader.on_forecast(BTC, 0, 100.0, 0.75, 1.0)
    [fill] = await trader.on_forecast(BTC, MINUTE, 110.0, 0.1, 1.0)
    assert fill.side == "sell" and fill.quantity == 50.0
    assert trader.portfolio.positions == {}
    assert trader.last_report is not None
    [trip] = trader.last_report.round_trips
    assert trip.won and trader.portfolio.trade_count == 1


async def test_invalid_forecast_trades_nothing_and_keeps_the_position() -> None:
    trader = _trader()
    await trader.on_forecast(BTC, 0, 100.0, 0.75, 1.0)
    assert await trader.on_forecast(BTC, MINUTE, 100.0, float("nan"), 1.0) == []
    assert trader.portfolio.quantity(BTC) == 50.0
    assert trader.last_report is not None
    assert trader.last_report.reasons == (RiskReason.INVALID_FORECAST,)


async def test_a_decision_without_an_order_still_reports_its_verdict() -> None:
    trader = _trader(min_edge=0.1)
    assert await trader.on_forecast(BTC, 0, 100.0, 0.55, 0.1) == []  # weak edge: stay flat
    report = trader.last_report
    assert report is not None and report.verdict is not None
    assert (report.ts, report.symbol, report.orders, report.fills, report.reasons) == (
        0,
        BTC,
        (),
        (),
        (),
    )
    assert report.verdict.quantity == 0.0 and not report.verdict.blocked
    with pytest.raises(AttributeError):
        report.ts = 1  # type: ignore[misc]


async def test_invalid_price_is_an_error() -> None:
    with pytest.raises(ValueError, match="price"):
        await _trader().on_forecast(BTC, 0, 0.0, 0.75, 1.0)


async def test_kill_switch_blocks_new_orders_and_flatten_still_works() -> None:
    trader = _trader()
    await trader.on_forecast(BTC, 0, 100.0, 0.75, 1.0)
    trader.kill()
    assert trader.killed
    assert await trader.on_forecast(BTC, MINUTE, 100.0, 0.1, 1.0) == []
    assert await trader.on_forecast(ETH, MINUTE, 10.0, 0.9, 1.0) == []
    assert trader.last_report is not None
    assert trader.last_report.reasons == (RiskReason.KILL_SWITCH,)
    [fill] = await trader.flatten_all({BTC: 99.0}, 2 * MINUTE)
    assert (fill.side, fill.quantity, fill.order_id) == ("sell", 50.0, "BTC/USDT-120000-0")
    assert trader.portfolio.positions == {}
    trader.resume()
    assert len(await trader.on_forecast(BTC, 3 * MINUTE, 100.0, 0.75, 1.0)) == 1


async def test_flatten_all_leaves_no_position_long_or_short() -> None:
    trader = _trader(allow_short=True)
    await trader.on_forecast(BTC, 0, 100.0, 0.8, 1.0)
    await trader.on_forecast(ETH, 0, 10.0, 0.2, 1.0)
    assert trader.portfolio.quantity(ETH) < 0
    fills = await trader.flatten_all({BTC: 101.0, ETH: 9.0}, MINUTE)
    assert [(f.symbol, f.side) for f in fills] == [(BTC, "sell"), (ETH, "buy")]
    assert trader.portfolio.positions == {}
    assert trader.snapshot()["gross_exposure"] == 0.0
    assert trader.last_report is not None and len(trader.last_report.round_trips) == 2
    assert await trader.flatten_all({}, 2 * MINUTE) == []


async def test_flatten_in_the_same_interval_gets_the_next_sequence_number() -> None:
    trader = _trader()
    await trader.on_forecast(BTC, 0, 100.0, 0.75, 1.0)
    [fill] = await trader.flatten_all({BTC: 100.0}, 0)
    assert fill.order_id == "BTC/USDT-0-1"


async def test_cooldown_after_consecutive_losses_blocks_new_entries() -> None:
    trader = _trader(loss_cooldown_trades=2, cooldown_intervals=5)
    losing = [(BTC, 0, 100.0, 0.9, 1.0), (BTC, MINUTE, 90.0, 0.5, 1.0)]
    losing += [(BTC, 2 * MINUTE, 90.0, 0.9, 1.0), (BTC, 3 * MINUTE, 80.0, 0.5, 1.0)]
    await _run(trader, losing)
    assert trader.portfolio.trade_count == 2 and trader.portfolio.win_count == 0
    assert await trader.on_forecast(BTC, 4 * MINUTE, 80.0, 0.9, 1.0) == []
    assert trader.last_report is not None
    assert trader.last_report.reasons == (RiskReason.COOLDOWN,)
    assert await trader.on_forecast(BTC, 8 * MINUTE, 80.0, 0.9, 1.0)  # 3 + 5 intervals


async def test_daily_loss_limit_halts_entries_until_the_next_utc_day() -> None:
    trader = _trader(daily_loss_limit=0.05)
    await trader.on_forecast(BTC, DAY - 3 * MINUTE, 100.0, 0.75, 1.0)  # half the equity in
    assert await trader.on_forecast(BTC, DAY - 2 * MINUTE, 80.0, 0.75, 1.0) == []  # -10%
    assert trader.last_report is not None
    assert trader.last_report.reasons == (RiskReason.DAILY_LOSS_LIMIT,)
    assert await trader.on_forecast(ETH, DAY - 2 * MINUTE, 10.0, 0.75, 1.0) == []
    assert trader.snapshot()["halted"]
    [fill] = await trader.on_forecast(BTC, DAY - MINUTE, 80.0, 0.5, 1.0)  # reducing: allowed
    assert fill.side == "sell" and trader.portfolio.positions == {}
    assert await trader.on_forecast(BTC, DAY, 80.0, 0.75, 1.0)  # new UTC day: entries again
    assert not trader.snapshot()["halted"]


async def test_replay_gives_identical_ids_and_fills() -> None:
    first, second = _trader(allow_short=True), _trader(allow_short=True)
    assert await _run(first, SCRIPT) == await _run(second, SCRIPT)
    assert first.state_dict() == second.state_dict()


async def test_portfolio_rebuilt_from_fills_equals_the_live_portfolio() -> None:
    trader = _trader(allow_short=True)
    fills = await _run(trader, SCRIPT)
    fills += await trader.flatten_all({}, 4 * MINUTE)
    assert trader.portfolio.positions == {}
    rebuilt = Portfolio.replay(trader.config.starting_cash, fills)
    assert rebuilt.state_dict() == trader.portfolio.state_dict()


async def test_resume_from_state_dict_continues_identically() -> None:
    straight = _trader(allow_short=True)
    expected = await _run(straight, SCRIPT)
    first = _trader(allow_short=True)
    got = await _run(first, SCRIPT[:5])
    resumed = _trader(allow_short=True)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    got += await _run(resumed, SCRIPT[5:])
    assert got == expected
    assert resumed.state_dict() == straight.state_dict()


async def test_snapshot_is_json_serialisable_and_consistent() -> None:
    trader = _trader()
    await _run(trader, SCRIPT[:2])
    snap = trader.snapshot({BTC: 110.0})
    json.dumps(snap)
    book = trader.portfolio
    assert snap["equity"] == pytest.approx(book.cash + book.gross_exposure({BTC: 110.0, ETH: 10.0}))
    assert snap["positions"][BTC]["price"] == 110.0
    assert snap["exposure"] == pytest.approx(snap["gross_exposure"] / snap["equity"])
    assert trader.marks[BTC] == 100.0  # a snapshot does not move the marks


forecasts = st.lists(
    st.tuples(
        st.sampled_from([BTC, ETH]),
        st.floats(-0.05, 0.05),  # price return since the symbol's last step
        st.floats(0.0, 1.0),
        st.floats(0.0, 1.0),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(forecasts, st.booleans())
def test_random_forecasts_then_flatten_leave_only_cash(
    steps: list[tuple[str, float, float, float]], allow_short: bool
) -> None:
    """After any forecast sequence, flatten_all leaves no position and equity == cash."""
    trader = _trader(allow_short=allow_short, max_order_notional=3_000.0)
    prices = {BTC: 100.0, ETH: 10.0}

    async def play() -> list[Any]:
        fills = []
        for ts, (symbol, ret, prob_up, confidence) in enumerate(steps):
            prices[symbol] *= 1.0 + ret
            fills += await trader.on_forecast(
                symbol, ts * MINUTE, prices[symbol], prob_up, confidence
            )
        return fills + await trader.flatten_all(prices, len(steps) * MINUTE)

    fills = asyncio.run(play())
    book = trader.portfolio
    assert book.positions == {}
    snap = trader.snapshot()
    assert math.isfinite(snap["equity"]) and snap["equity"] == book.cash
    assert book.cash == pytest.approx(10_000.0 + book.realized_pnl - book.fees_paid, abs=1e-6)
    assert Portfolio.replay(10_000.0, fills).state_dict() == book.state_dict()
