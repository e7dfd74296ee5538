"""Exact fused multiply-add and the scale-aware zero test."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from titan.features.numeric import fma, fma_ratio, is_flat

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150)


@given(finite, finite, finite)
def test_fma_equals_the_exact_result_rounded_once(a: float, b: float, c: float) -> None:
    assert fma(a, b, c) == float(Fraction(a) * Fraction(b) + Fraction(c))


@given(finite, finite, finite)
def test_fma_ratio_equals_fma_with_the_ratio_as_multiplier(a: float, b: float, c: float) -> None:
    num, den = a.as_integer_ratio()
    assert fma_ratio(num, den, b, c) == fma(a, b, c)


def test_fma_keeps_the_product_bits_an_unfused_multiply_add_loses() -> None:
    a = 1.0 + 2.0**-30
    c = -(1.0 + 2.0**-29)
    assert a * a + c == 0.0
    assert fma(a, a, c) == 2.0**-60


def test_is_flat_is_relative_to_the_scale() -> None:
    assert is_flat(1e-12, 1e3)
    assert not is_flat(1e-12, 1e-3)
    assert is_flat(0.0, 0.0)
