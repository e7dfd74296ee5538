"""Bounded per-symbol history of feature rows and closes, for walk-forward refits.

Each symbol keeps its newest `capacity` feature rows, closes and open times in numpy
rings (memory is fixed however long the daemon runs). `training_set` turns them into
the windows and labels a model may train on at the current candle: labels look
`horizon` candles ahead, so only windows whose label has resolved are included (past
data only), pooled over symbols in time order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from titan.models.base import FloatArray, InputSpec
from titan.models.dataset import supervised


class _Ring:
    __slots__ = ("close", "count", "rows", "ts")

    def __init__(self, capacity: int, width: int) -> None:
        self.rows = np.full((capacity, width), np.nan)
        self.close = np.full(capacity, np.nan)
        self.ts = np.zeros(capacity, dtype=np.int64)
        self.count = 0

    def push(self, ts: int, row: FloatArray, close: float) -> None:
        slot = self.count % len(self.close)
        self.rows[slot], self.close[slot], self.ts[slot] = row, close, ts
        self.count += 1

    def ordered(self) -> tuple[FloatArray, FloatArray, np.ndarray]:
        """Rows, closes and times, oldest first."""
        size = min(self.count, len(self.close))
        order = (np.arange(self.count - size, self.count) % len(self.close)).astype(np.int64)
        return self.rows[order], self.close[order], self.ts[order]


class TrainingHistory:
    """Per-symbol rings of (open time, feature row, close)."""

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity, self.width = capacity, width
        self._rings: dict[str, _Ring] = {}

    def push(self, symbol: str, ts: int, row: FloatArray, close: float) -> None:
        ring = self._rings.get(symbol)
        if ring is None:
            ring = self._rings[symbol] = _Ring(self.capacity, self.width)
        ring.push(ts, row, close)

    @property
    def rows(self) -> int:
        """Rows held over all symbols (an upper bound on the labelled samples)."""
        return sum(min(ring.count, self.capacity) for ring in self._rings.values())

    def training_set(
        self, spec_columns: np.ndarray, lookback: int, horizon: int
    ) -> tuple[FloatArray, FloatArray]:
        """Resolved (windows, labels) over every symbol, oldest first; windows (N, lookback, F)."""
        parts = [
            self._symbol_set(ring, spec_columns, lookback, horizon) for ring in self._rings.values()
        ]
        parts = [part for part in parts if len(part[0])]
        if not parts:
            return np.empty((0, lookback, len(spec_columns))), np.empty(0)
        windows = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        order = np.argsort(np.concatenate([p[2] for p in parts]), kind="stable")
        return windows[order], labels[order]

    @staticmethod
    def _symbol_set(
        ring: _Ring, columns: np.ndarray, lookback: int, horizon: int
    ) -> tuple[FloatArray, FloatArray, np.ndarray]:
        rows, close, ts = ring.ordered()
        if len(close) < lookback + horizon:
            return np.empty((0, lookback, len(columns))), np.empty(0), np.empty(0, np.int64)
        data = supervised(rows[:, columns], close, lookback, horizon)
        known = data.known_at(len(close) - 1)
        return known.windows, known.labels, ts[known.end_rows]

    def state_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "width": self.width,
            "rings": {
                symbol: {
                    "rows": r.rows.copy(),
                    "close": r.close.copy(),
                    "ts": r.ts.copy(),
                    "count": r.count,
                }
                for symbol, r in self._rings.items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if (state["capacity"], state["width"]) != (self.capacity, self.width):
            raise ValueError("training history was saved with a different capacity or width")
        self._rings = {}
        for symbol, saved in state["rings"].items():
            ring = self._rings[symbol] = _Ring(self.capacity, self.width)
            ring.rows[:], ring.close[:], ring.ts[:] = saved["rows"], saved["close"], saved["ts"]
            ring.count = int(saved["count"])


def spec_columns(spec: InputSpec, names: tuple[str, ...]) -> np.ndarray:
    """Column indices of a model's features within the full feature row."""
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[name] for name in spec.features], dtype=np.int64)
