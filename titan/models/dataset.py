"""Supervised datasets for the base models: labels, sliding windows, walk-forward splits.

Everything here is positional and chronological; nothing is ever shuffled.

- `labels(close, horizon)`: ``y[t] = 1`` if ``close[t + h] > close[t]``, 0 if lower, NaN
  if equal (a tie) or if ``t + h`` is past the end (the future is unknown). Row t's
  label reads ``close[t]`` and ``close[t + h]`` only.
- `sliding_windows(table, lookback, first)`: window i covers feature rows
  ``first + i - lookback + 1 .. first + i`` (its *end row* is ``first + i``), shape
  (n_windows, lookback, n_features). Rows before ``first`` are only read as the
  history of the first windows; ``first`` defaults to the first row from which every
  window is complete (see `first_complete_row`).
- `supervised(table, close, lookback, horizon)`: windows with their labels and end rows.
  `SupervisedSet.known_at(t)` keeps the windows whose label is resolved at row t
  (``end + horizon <= t``): the only samples a model may train on at t;
  ``.known_at(t).tail(train_window)`` is the trailing training window.
- `walk_forward(n, train, test, gap, step)`: train/test index ranges over n consecutive
  samples with ``train.stop + gap <= test.start``. With windows of ``lookback`` rows,
  feature rows reading up to ``WARMUP`` candles back and labels ``horizon`` rows ahead,
  ``gap >= purge_gap(horizon, lookback)`` guarantees that no candle read by a training
  sample (inputs or label) is read by any test sample (the purge).
- `feature_columns(spec)`: a model's columns in the 40-feature table (engine slicing).
- `as_windows(windows, spec)`: validates a model's input batch against its `InputSpec`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from titan.features.spec import FEATURE_NAMES, WARMUP
from titan.models.base import FloatArray, InputSpec

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def labels(close: FloatArray, horizon: int = 1) -> FloatArray:
    """Direction of ``close[t + horizon]`` vs ``close[t]``: 1 up, 0 down, NaN tie/unknown."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    c = np.asarray(close, dtype=np.float64)
    out = np.full(c.shape[0], np.nan)
    if c.shape[0] > horizon:
        now, later = c[:-horizon], c[horizon:]
        out[:-horizon] = np.where(later > now, 1.0, np.where(later < now, 0.0, np.nan))
    return out


def first_complete_row(table: FloatArray, lookback: int = 1) -> int:
    """End row of the first window made of all-finite rows: ``w + lookback - 1``.

    ``w`` is the first all-finite row (the warm-up rows before it hold NaN). Later
    non-finite rows are kept; the models return missing predictions for their windows.
    """
    finite = np.isfinite(np.asarray(table, dtype=np.float64)).all(axis=1)
    first = int(np.argmax(finite)) if finite.any() else finite.shape[0]
    return first + lookback - 1


def sliding_windows(table: FloatArray, lookback: int, first: int | None = None) -> FloatArray:
    """(n_rows, F) -> (n_rows - first, lookback, F) windows ending at rows first..n_rows-1.

    A read-only view on `table` (copy it before writing).
    """
    data = np.asarray(table, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"feature table must be 2-D, got shape {data.shape}")
    if lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    start = first_complete_row(data, lookback) if first is None else first
    if start < lookback - 1:
        raise ValueError(f"first end row {start} leaves no room for lookback {lookback}")
    if start >= data.shape[0]:
        return np.empty((0, lookback, data.shape[1]))
    view = np.lib.stride_tricks.sliding_window_view(data[start - lookback + 1 :], lookback, axis=0)
    return np.asarray(view.transpose(0, 2, 1))


@dataclass(frozen=True, slots=True)
class SupervisedSet:
    """Windows (n, lookback, F), their labels (n,) and end rows (n,), chronological."""

    windows: FloatArray
    labels: FloatArray
    end_rows: IntArray
    horizon: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def known_at(self, row: int) -> SupervisedSet:
        """The samples whose label is resolved once row `row` has closed."""
        keep = self.end_rows + self.horizon <= row
        return self.subset(np.flatnonzero(keep))

    def tail(self, n: int) -> SupervisedSet:
        """The newest `n` samples (a trailing training window)."""
        return self.subset(slice(max(len(self) - n, 0), None))

    def subset(self, index: IntArray | range | slice) -> SupervisedSet:
        idx = np.arange(len(self))[index] if isinstance(index, range | slice) else index
        return SupervisedSet(self.windows[idx], self.labels[idx], self.end_rows[idx], self.horizon)


def supervised(
    table: FloatArray,
    close: FloatArray,
    lookback: int,
    horizon: int = 1,
    first: int | None = None,
) -> SupervisedSet:
    """Windows of `table` rows with the direction label of their end row's close."""
    data = np.asarray(table, dtype=np.float64)
    c = np.asarray(close, dtype=np.float64)
    if data.shape[0] != c.shape[0]:
        raise ValueError(f"{data.shape[0]} feature rows but {c.shape[0]} closes")
    start = first_complete_row(data, lookback) if first is None else first
    windows = sliding_windows(data, lookback, start)
    end_rows = np.arange(start, start + windows.shape[0], dtype=np.int64)
    return SupervisedSet(windows, labels(c, horizon)[end_rows], end_rows, horizon)


def purge_gap(horizon: int, lookback: int, extra: int = 0) -> int:
    """Samples to leave between train and test: ``horizon + lookback + WARMUP + extra``.

    Sample e (a window ending at feature row e) reads candles
    ``e - lookback + 1 - WARMUP .. e`` through its inputs (each feature row looks back up
    to `WARMUP` candles: sma_50, volume_sma) and candle ``e + horizon`` through its label.
    A training sample e and a test sample s > e share no candle iff
    ``e + horizon < s - lookback + 1 - WARMUP``, i.e. ``s - e >= horizon + lookback +
    WARMUP``. `walk_forward` leaves ``s - e >= gap + 1``: this gap keeps every candle of
    every training sample (inputs and label) out of every test sample, with one row to
    spare. ``horizon + lookback`` (the gap before) kept training labels out of the test
    windows' feature rows only, not out of the candles their indicators read. (The
    recursive indicators, EMA, MACD, RSI, TRIX, ADX, weigh older candles too, with
    geometrically decaying weight; `WARMUP` bounds every fixed-length window.)
    The one purge used by `walk_forward` folds, `titan train`, the neural models' early
    stopping tail and the background retrainer's held-out window.
    """
    return horizon + lookback + WARMUP + extra


@dataclass(frozen=True, slots=True)
class Split:
    """One walk-forward fold: sample index ranges, train strictly before test."""

    train: range
    test: range


def walk_forward(
    n: int, train: int, test: int, gap: int, step: int | None = None, expanding: bool = False
) -> Iterator[Split]:
    """Chronological folds over n samples: train ``train`` (or all past with `expanding`),
    skip ``gap``, test the next ``test``; advance by ``step`` (default ``test``).

    The last fold's test range may be shorter than ``test``; a fold is yielded only when
    its test range is non-empty and its train range is full (``train`` samples).
    """
    _check_positive(train=train, test=test, step=step if step is not None else test)
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    advance = test if step is None else step
    train_end = train
    while train_end + gap < n:
        test_start = train_end + gap
        first = 0 if expanding else train_end - train
        yield Split(range(first, train_end), range(test_start, min(test_start + test, n)))
        train_end += advance


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def feature_columns(spec: InputSpec, names: Sequence[str] = FEATURE_NAMES) -> IntArray:
    """Column indices of `spec.features` in a table whose columns are `names`."""
    index = {name: i for i, name in enumerate(names)}
    unknown = [name for name in spec.features if name not in index]
    if unknown:
        raise ValueError(f"features not in the table: {unknown}")
    return np.array([index[name] for name in spec.features], dtype=np.int64)


def as_windows(windows: FloatArray, spec: InputSpec) -> FloatArray:
    """Validate a (B, T, F) batch against `spec`; keep the last ``spec.lookback`` steps."""
    arr = np.asarray(windows, dtype=np.float64)
    n_features = len(spec.features)
    if arr.ndim != 3 or arr.shape[2] != n_features or arr.shape[1] < spec.lookback:
        raise ValueError(
            f"expected windows of shape (B, >={spec.lookback}, {n_features}), got {arr.shape}"
        )
    return arr[:, arr.shape[1] - spec.lookback :, :]


def finite_rows(windows: FloatArray) -> BoolArray:
    """True for each window whose values are all finite (others are missing predictions)."""
    return np.asarray(np.isfinite(windows).all(axis=(1, 2)))
