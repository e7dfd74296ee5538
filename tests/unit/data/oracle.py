"""An independent statement of the boundary rules, the judge of the property tests.

Deliberately does not call `titan.data.candle.check_values`: a bug in a rule there must
show up as a disagreement here.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from titan.data.candle import Candle

MINUTE = 60_000
YEAR_2200_MS = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp()) * 1000


def oracle_valid(candle: Candle, timeframe_ms: int = MINUTE) -> bool:
    """Finite, positive prices with open/close in [low, high], volume >= 0, and an aligned
    open time from the epoch up to (not including) 2200-01-01 UTC."""
    o, h, low, c, v = candle.open, candle.high, candle.low, candle.close, candle.volume
    if any(math.isnan(x) or math.isinf(x) for x in (o, h, low, c, v)):
        return False
    if o <= 0 or h <= 0 or low <= 0 or c <= 0 or v < 0 or h < low:
        return False
    if o < low or o > h or c < low or c > h:
        return False
    if type(candle.ts) is not int or candle.ts < 0 or candle.ts >= YEAR_2200_MS:
        return False
    return candle.ts % timeframe_ms == 0
