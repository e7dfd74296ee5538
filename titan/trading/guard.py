"""Live trading is opt-in twice: `mode = "live"` in the config AND an explicit confirmation
(the `--confirm-live` flag or TITAN_CONFIRM_LIVE=yes). Paper trading is the default.

Call `require_live_confirmation` before anything that can place a real order is built.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

CONFIRM_ENV = "TITAN_CONFIRM_LIVE"
CONFIRM_VALUE = "yes"


class LiveTradingRefused(RuntimeError):
    """Live trading was asked for without both opt-ins."""


def require_live_confirmation(mode: str, confirm_flag: bool, env: Mapping[str, str]) -> None:
    """Return only if `mode == "live"` and (`confirm_flag` or TITAN_CONFIRM_LIVE=yes)."""
    if mode != "live":
        raise LiveTradingRefused(
            f"refusing live trading: the config says mode = {mode!r}; real orders need "
            'mode = "live" (paper is the default)'
        )
    by_env = env.get(CONFIRM_ENV, "").strip() == CONFIRM_VALUE
    if not (confirm_flag or by_env):
        raise LiveTradingRefused(
            'refusing live trading: mode = "live" must also be confirmed with --confirm-live '
            f"or {CONFIRM_ENV}={CONFIRM_VALUE}"
        )
    log.warning("live_trading_confirmed", via="flag" if confirm_flag else "env")
