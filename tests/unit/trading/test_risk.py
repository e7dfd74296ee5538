"""Risk limits: each limit blocks or clips with its own reason, in the documented order."""

from __future__ import annotations

from typing import Any

import pytest

from titan.config.trading import TradingConfig
from titan.trading import RiskLimits, RiskReason

DAY = 86_400_000
MINUTE = 60_000
LOOSE: dict[str, Any] = {
    "max_position_notional": 1e9,
    "max_order_notional": 1e9,
    "min_order_notional": 0.0,
    "dust_notional": 0.0,
    "daily_loss_limit": 0.05,
    "fee_bps": 0.0,
    "slippage_bps": 0.0,
}


def _limits(**overrides: Any) -> RiskLimits:
    return RiskLimits(TradingConfig(**{**LOOSE, **overrides}), interval_ms=MINUTE)


def _check(limits: RiskLimits, **kw: Any) -> Any:
    args = {"ts": 0, "equity": 10_000.0, "position": 0.0, "target": 1.0, "price": 100.0}
    args["cash"] = 10_000.0
    return limits.check(**{**args, **kw})


def test_unlimited_order_passes_unchanged() -> None:
    verdict = _check(_limits(), target=2.0)
    assert verdict.quantity == 2.0 and verdict.reasons == () and not verdict.blocked


def test_kill_switch_blocks_every_order_until_resume() -> None:
    limits = _limits()
    limits.kill()
    for position, target in [(0.0, 1.0), (3.0, 0.0)]:
        verdict = _check(limits, position=position, target=target)
        assert verdict.quantity == 0.0 and verdict.blocked
        assert verdict.reasons == (RiskReason.KILL_SWITCH,)
    limits.resume()
    assert _check(limits).quantity == 1.0


def test_staying_flat_passes_every_limit_without_a_reason() -> None:
    limits = _limits(loss_cooldown_trades=1, cooldown_intervals=3)
    _check(limits, ts=0, equity=10_000.0)
    _check(limits, ts=1, equity=1.0)  # daily loss limit tripped
    limits.record_round_trip(1, -1.0)  # cooldown
    limits.kill()
    verdict = _check(limits, ts=2, target=0.0)
    assert (verdict.quantity, verdict.reasons, verdict.blocked) == (0.0, (), False)
    assert limits.halted and limits.in_cooldown(2)


def test_position_limit_clips_target_notional() -> None:
    verdict = _check(_limits(max_position_notional=250.0), target=5.0, position=1.0)
    assert verdict.target == pytest.approx(2.5)
    assert verdict.quantity == pytest.approx(1.5)
    assert verdict.reasons == (RiskReason.POSITION_LIMIT,)


def test_position_limit_clips_short_targets_symmetrically() -> None:
    verdict = _check(_limits(max_position_notional=250.0), target=-5.0)
    assert verdict.target == pytest.approx(-2.5)


def test_order_limit_clips_order_notional() -> None:
    verdict = _check(_limits(max_order_notional=150.0), target=-4.0, position=1.0)
    assert verdict.quantity == pytest.approx(-1.5)
    assert verdict.reasons == (RiskReason.ORDER_LIMIT,)


def test_cash_limit_caps_buys_at_affordable_quantity_including_costs() -> None:
    limits = _limits(fee_bps=4.0, slippage_bps=1.0)
    verdict = _check(limits, target=50.0, cash=1_000.0)
    assert verdict.quantity == pytest.approx(1_000.0 / (100.01 * 1.0004), rel=1e-12)
    assert verdict.reasons == (RiskReason.CASH_LIMIT,)


def test_cash_limit_never_stops_buying_back_a_short() -> None:
    verdict = _check(_limits(), position=-5.0, target=0.0, cash=-100.0)
    assert verdict.quantity == 5.0 and verdict.reasons == ()


def test_dust_orders_are_skipped_but_going_flat_is_not() -> None:
    limits = _limits(min_order_notional=10.0)
    dust = _check(limits, position=1.0, target=1.05)
    assert dust.quantity == 0.0 and dust.reasons == (RiskReason.DUST,)
    close = _check(limits, position=0.05, target=0.0)
    assert close.quantity == -0.05 and close.reasons == ()


def test_untradable_dust_is_not_sent_even_to_go_flat() -> None:
    """Lot steps and base-asset fees leave dust an exchange refuses to trade: leave it."""
    limits = _limits(min_order_notional=10.0, dust_notional=1.0)
    dust = _check(limits, position=0.005, target=0.0)  # worth 0.5 quote
    assert dust.quantity == 0.0 and dust.reasons == (RiskReason.DUST,)


def test_daily_loss_limit_allows_only_reducing_orders() -> None:
    limits = _limits()
    _check(limits, ts=0, equity=10_000.0)
    blocked = _check(limits, ts=MINUTE, equity=9_500.0, position=2.0, target=4.0)
    assert blocked.quantity == 0.0 and blocked.reasons == (RiskReason.DAILY_LOSS_LIMIT,)
    reduce = _check(limits, ts=2 * MINUTE, equity=9_500.0, position=2.0, target=1.0)
    assert reduce.quantity == -1.0 and reduce.reasons == ()
    no_flip = _check(limits, ts=3 * MINUTE, equity=9_500.0, position=2.0, target=-3.0)
    assert no_flip.quantity == -2.0 and no_flip.reasons == (RiskReason.DAILY_LOSS_LIMIT,)


def test_daily_loss_limit_not_tripped_by_smaller_drop() -> None:
    limits = _limits()
    _check(limits, ts=0, equity=10_000.0)
    assert _check(limits, ts=MINUTE, equity=9_501.0).quantity == 1.0
    assert not limits.halted


def test_daily_loss_limit_is_sticky_within_the_day_and_resets_at_utc_midnight() -> None:
    limits = _limits()
    _check(limits, ts=DAY - 10 * MINUTE, equity=10_000.0)
    _check(limits, ts=DAY - 5 * MINUTE, equity=9_000.0)
    recovered = _check(limits, ts=DAY - MINUTE, equity=10_500.0)
    assert recovered.reasons == (RiskReason.DAILY_LOSS_LIMIT,)
    next_day = _check(limits, ts=DAY, equity=9_000.0)
    assert next_day.quantity == 1.0 and next_day.reasons == ()
    assert limits.day_start_equity == 9_000.0


def test_cooldown_after_consecutive_losing_round_trips_blocks_entries() -> None:
    limits = _limits(loss_cooldown_trades=2, cooldown_intervals=3)
    limits.record_round_trip(0, -1.0)
    assert _check(limits, ts=MINUTE).reasons == ()
    limits.record_round_trip(MINUTE, -1.0)
    entry = _check(limits, ts=2 * MINUTE)
    assert entry.quantity == 0.0 and entry.reasons == (RiskReason.COOLDOWN,)
    exit_ = _check(limits, ts=2 * MINUTE, position=1.0, target=0.0)
    assert exit_.quantity == -1.0
    assert _check(limits, ts=4 * MINUTE - 1).reasons == (RiskReason.COOLDOWN,)
    assert _check(limits, ts=4 * MINUTE).reasons == ()


def test_a_win_resets_the_losing_streak() -> None:
    limits = _limits(loss_cooldown_trades=2, cooldown_intervals=3)
    limits.record_round_trip(0, -1.0)
    limits.record_round_trip(0, 2.0)
    limits.record_round_trip(0, -1.0)
    assert not limits.in_cooldown(1) and limits.loss_streak == 1


def test_limits_apply_in_documented_order_and_report_every_step() -> None:
    limits = _limits(max_position_notional=1_000.0, max_order_notional=300.0)
    verdict = _check(limits, target=50.0, cash=200.0)
    assert verdict.reasons == (
        RiskReason.POSITION_LIMIT,
        RiskReason.ORDER_LIMIT,
        RiskReason.CASH_LIMIT,
    )
    assert verdict.quantity == pytest.approx(2.0)


def test_risk_state_round_trips() -> None:
    limits = _limits(loss_cooldown_trades=1)
    _check(limits, ts=0, equity=10_000.0)
    _check(limits, ts=1, equity=1.0)
    limits.record_round_trip(1, -5.0)
    limits.kill()
    restored = _limits(loss_cooldown_trades=1)
    restored.load_state_dict(limits.state_dict())
    assert restored.state_dict() == limits.state_dict()
    assert restored.killed and restored.halted and restored.in_cooldown(2)
