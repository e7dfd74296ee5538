"""Bounded per-symbol feature buffers for model inference.

:class:`FeatureBuffers` keeps, per symbol, the streaming indicator state and a numpy
ring of the last ``buffer_size`` feature rows: memory is fixed per symbol however many
candles go through. ``update`` computes a candle's row incrementally; ``append`` takes a
row a replay computed in batch (the streaming state then stops: see `_SymbolBuffer`).
``window(s)`` hand out model input windows, oldest row first; ``state_dict`` /
``load_state_dict`` checkpoint and restore everything exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from titan.config.features import FeaturesConfig
from titan.features.kernels import Array
from titan.features.spec import FEATURE_NAMES, NUM_FEATURES, WARMUP
from titan.features.streaming import StreamingFeatures

STATE_VERSION = 1


class _SymbolBuffer:
    """One symbol: streaming state plus the ring of its latest feature rows.

    `streaming` is False once a precomputed row was appended: the indicator state then
    lags the rows, so the buffer takes only precomputed rows from then on."""

    __slots__ = ("count", "features", "rows", "streaming")

    def __init__(self, buffer_size: int) -> None:
        self.features = StreamingFeatures()
        self.rows: Array = np.full((buffer_size, NUM_FEATURES), np.nan)
        self.count = 0
        self.streaming = True

    def push(self, open_: float, high: float, low: float, close: float, volume: float) -> Array:
        if not self.streaming:
            raise ValueError(
                "this symbol's feature rows were precomputed by a replay, so its streaming "
                "indicator state was not kept: continue it with a replay (or a fresh state)"
            )
        self._store(self.features.update(open_, high, low, close, volume))
        copy: Array = self.rows[(self.count - 1) % self.rows.shape[0]].copy()
        return copy

    def append(self, row: Array) -> None:
        self.streaming = False
        self._store(row)

    def _store(self, row: Array | list[float]) -> None:
        self.rows[self.count % self.rows.shape[0]] = row
        self.count += 1

    def latest(self, n: int, out: Array) -> None:
        """Write the latest ``n`` rows, oldest first, into ``out`` (shape (n, 40))."""
        size, end = self.rows.shape[0], self.count % self.rows.shape[0]
        start = end - n
        if start >= 0:
            out[:] = self.rows[start:end]
        else:
            out[:-start] = self.rows[size + start :]
            out[-start:] = self.rows[:end]


class FeatureBuffers:
    """Per-symbol streaming features and bounded rings of their latest rows."""

    def __init__(self, config: FeaturesConfig | None = None) -> None:
        config = config or FeaturesConfig()
        self._buffer_size = config.buffer_size
        self._window = config.window
        self._symbols: dict[str, _SymbolBuffer] = {}

    @property
    def buffer_size(self) -> int:
        """Feature rows kept per symbol."""
        return self._buffer_size

    @property
    def default_window(self) -> int:
        """Timesteps in a model input window when ``n`` is not given (config ``window``)."""
        return self._window

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols seen so far, in order of first update."""
        return tuple(self._symbols)

    def update(
        self, symbol: str, open_: float, high: float, low: float, close: float, volume: float
    ) -> Array:
        """Feed one closed candle of ``symbol``; its 40-feature row (NaN in warm-up)."""
        buffer = self._symbols.get(symbol)
        if buffer is None:
            buffer = self._symbols[symbol] = _SymbolBuffer(self._buffer_size)
        return buffer.push(float(open_), float(high), float(low), float(close), float(volume))

    def append(self, symbol: str, position: int, row: Array) -> None:
        """Take a precomputed feature row (batch path, bit-identical to ``update``) as the
        row of ``symbol``'s next candle. ``position`` (rows held before it) guards against
        rows computed from another origin than the buffer's."""
        buffer = self._symbols.get(symbol)
        if buffer is None:
            buffer = self._symbols[symbol] = _SymbolBuffer(self._buffer_size)
        if position != buffer.count:
            raise ValueError(
                f"precomputed row {position} of {symbol!r} does not follow the buffer's "
                f"{buffer.count} rows (computed from another start?)"
            )
        buffer.append(row)

    def count(self, symbol: str) -> int:
        """Candles seen for ``symbol`` (0 if never updated)."""
        buffer = self._symbols.get(symbol)
        return buffer.count if buffer is not None else 0

    def is_warm(self, symbol: str, n: int | None = None) -> bool:
        """True when the latest ``n`` rows (default: ``default_window``) are all fully defined."""
        return self.count(symbol) - self._resolve(n) >= WARMUP

    def window(self, symbol: str, n: int | None = None) -> Array:
        """The latest ``n`` rows (default: ``default_window``) of ``symbol``, shape (n, 40),
        oldest first (a copy). Rows of candles before the warm-up contain NaN."""
        n = self._resolve(n)
        out = np.empty((n, NUM_FEATURES))
        self._buffer(symbol, n).latest(n, out)
        return out

    def windows(self, symbols: Sequence[str], n: int | None = None) -> Array:
        """Stacked windows for batched inference, shape (len(symbols), n, 40)."""
        n = self._resolve(n)
        out = np.empty((len(symbols), n, NUM_FEATURES))
        for i, symbol in enumerate(symbols):
            self._buffer(symbol, n).latest(n, out[i])
        return out

    def drop(self, symbol: str) -> None:
        """Forget ``symbol`` (e.g. after a gap that invalidates its indicators)."""
        self._symbols.pop(symbol, None)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: plain data and numpy arrays."""
        return {
            "version": STATE_VERSION,
            "buffer_size": self._buffer_size,
            "features": list(FEATURE_NAMES),
            "symbols": {
                symbol: {
                    "state": buf.features.state_dict(),
                    "rows": buf.rows.copy(),
                    "count": buf.count,
                    "streaming": buf.streaming,
                }
                for symbol, buf in self._symbols.items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace all symbols' state with ``state`` (from ``state_dict()``)."""
        _check_state(state, self._buffer_size)
        symbols: dict[str, _SymbolBuffer] = {}
        for symbol, saved in state["symbols"].items():
            buffer = _SymbolBuffer(self._buffer_size)
            buffer.features.load_state_dict(saved["state"])
            buffer.rows[:] = np.asarray(saved["rows"], dtype=np.float64)
            buffer.count = int(saved.get("count", buffer.features.count))
            buffer.streaming = bool(saved.get("streaming", True))
            symbols[symbol] = buffer
        self._symbols = symbols

    def _resolve(self, n: int | None) -> int:
        n = self._window if n is None else n
        if not 1 <= n <= self._buffer_size:
            raise ValueError(f"window length {n} outside 1..buffer_size={self._buffer_size}")
        return n

    def _buffer(self, symbol: str, n: int) -> _SymbolBuffer:
        buffer = self._symbols.get(symbol)
        if buffer is None:
            raise KeyError(f"no candles for symbol {symbol!r}")
        if buffer.count < n:
            raise ValueError(f"{symbol!r} has {buffer.count} rows, window needs {n}")
        return buffer


def _check_state(state: Mapping[str, Any], buffer_size: int) -> None:
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported feature buffer state version {state.get('version')!r}")
    if state.get("buffer_size") != buffer_size:
        raise ValueError(f"state buffer_size {state.get('buffer_size')} != {buffer_size}")
    if tuple(state.get("features", ())) != FEATURE_NAMES:
        raise ValueError("state was saved with a different feature set")
