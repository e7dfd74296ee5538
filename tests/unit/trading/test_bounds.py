"""`clamp` is `min(max(value, low), high)` exactly: NaN and signed zeros included."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from titan.trading.bounds import clamp

SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 1e-300]


def test_clamp_matches_the_builtins_on_special_values() -> None:
    for value, low, high in itertools.product(SPECIAL, repeat=3):
        assert repr(clamp(value, low, high)) == repr(min(max(value, low), high))


@given(st.floats(), st.floats(), st.floats())
def test_clamp_matches_the_builtins(value: float, low: float, high: float) -> None:
    assert repr(clamp(value, low, high)) == repr(min(max(value, low), high))
