"""Exact scalar arithmetic for the streaming kernels.

TA-Lib 0.8 computes its EMA and Wilder (ATR) recursions with a fused multiply-add: one
rounding of ``a * b + c`` instead of two. Python 3.11 has no ``math.fma``, so
:func:`fma` computes the correctly rounded result from the exact integer ratios of the
operands (CPython's int / int true division rounds correctly). Inputs must be finite.
"""

from __future__ import annotations

from titan.features.spec import FLAT_EPSILON


def fma(a: float, b: float, c: float) -> float:
    """``a * b + c`` rounded once, as IEEE 754 fusedMultiplyAdd (finite inputs)."""
    na, da = a.as_integer_ratio()
    nb, db = b.as_integer_ratio()
    return _ratio_add(na * nb, da * db, c)


def fma_ratio(num: int, den: int, b: float, c: float) -> float:
    """``a * b + c`` rounded once, for ``a = num / den`` given as its exact ratio."""
    nb, db = b.as_integer_ratio()
    return _ratio_add(num * nb, den * db, c)


def _ratio_add(num: int, den: int, c: float) -> float:
    """``num / den + c`` rounded once; ``den`` and ``c``'s denominator are powers of 2."""
    nc, dc = c.as_integer_ratio()
    if den >= dc:
        return (num + nc * (den // dc)) / den
    return (num * (dc // den) + nc) / dc


def is_flat(difference: float, scale: float) -> bool:
    """TA-Lib's scale-aware zero test: ``|difference| <= 1e-14 * scale``."""
    return abs(difference) <= FLAT_EPSILON * scale
