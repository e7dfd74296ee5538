"""`clamp`: `min(max(value, low), high)` spelled with comparisons.

Sizing and the risk limits clamp a few numbers on most decisions, and calls of the `min` /
`max` builtins cost several times more than a comparison. The result is exactly the
builtins': a tie or a NaN keeps the earlier argument (so signed zeros and NaN come out the
same way).
"""

from __future__ import annotations


def clamp(value: float, low: float, high: float) -> float:
    """`min(max(value, low), high)`."""
    if low > value:
        value = low
    return high if high < value else value
