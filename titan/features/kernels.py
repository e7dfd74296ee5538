"""Own vectorised kernels for the batch path (numpy arrays in, arrays out).

Window sums add the window's values oldest first, one shifted slice at a time, so each
output is computed with exactly the additions the streaming kernels perform (no
cumulative sums: their cancellation would break exact zeros and 1e-9 agreement).
Outputs are NaN where the window is not yet full.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def window_sum(x: Array, n: int) -> Array:
    """Sum of the last ``n`` values at each index, added oldest first."""
    out = np.full(x.shape, np.nan)
    m = x.size - n + 1
    if m <= 0:
        return out
    acc = np.zeros(m)
    for k in range(n):
        acc += x[k : k + m]
    out[n - 1 :] = acc
    return out


def lag(x: Array, n: int) -> Array:
    """``x[t - n]`` at each index (NaN for the first ``n``)."""
    out = np.full(x.shape, np.nan)
    if n < x.size:
        out[n:] = x[: x.size - n]
    return out


def deviation(x: Array, n: int) -> Array:
    """Population standard deviation of the last ``n`` values, from differences to the
    newest value: ``var = mean(d**2) - mean(d)**2`` with ``d = x[i] - x[t]``."""
    out = np.full(x.shape, np.nan)
    m = x.size - n + 1
    if m <= 0:
        return out
    newest = x[n - 1 :]
    s1, s2 = np.zeros(m), np.zeros(m)
    for k in range(n):
        d = x[k : k + m] - newest
        s1 += d
        s2 += d * d
    mean = s1 / n
    var = s2 / n - mean * mean
    out[n - 1 :] = np.sqrt(np.where(var > 0.0, var, 0.0))
    return out


def divide_or(num: Array, den: Array, default: float) -> Array:
    """``num / den`` where ``den > 0``, else ``default`` (also where ``den`` is NaN)."""
    out = np.full(np.broadcast(num, den).shape, default)
    np.divide(num, den, out=out, where=den > 0.0)
    return out


def apply_scalar(fn: Callable[[float], float], x: Array) -> Array:
    """``fn`` (a ``math`` function) element by element, bit-identical to scalar calls
    (numpy's own ``log``/``log1p`` may differ from ``math``'s in the last bit)."""
    return np.fromiter(map(fn, x.tolist()), dtype=np.float64, count=x.size)


def safe_log(x: float) -> float:
    """``math.log`` that returns NaN instead of raising for NaN or non-positive input."""
    return math.log(x) if x > 0.0 else math.nan
