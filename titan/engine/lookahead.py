"""Base-model outputs computed ahead over a replay's precomputed feature tables.

Between two refits the base models are frozen, and a replay's feature table already holds
every window they will be shown until then. `Lookahead` runs them once over those windows
instead of once per batch of decisions. A decision still reads only the outputs of its own
window, at its own interval, so decisions are identical to evaluating each window when its
candle closes (tests/integration/test_engine.py proves it on whole ledgers). The engine
calls `clear` whenever a model changes (a refit, a swap of retrained models).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from titan.engine.ensemble import Ensemble
from titan.features.kernels import Array

# (symbol, its feature table, the decision row's position in it, rows the models stay frozen)
Request = tuple[str, Array, int, int]


@dataclass(slots=True)
class _Span:
    table: Array
    start: int
    prob: Array  # (n, M)
    confidence: Array  # (n, M)
    context: Array  # (n, C)

    def covers(self, table: Array, position: int) -> bool:
        return table is self.table and self.start <= position < self.start + len(self.prob)


class Lookahead:
    def __init__(self, ensemble: Ensemble) -> None:
        self.ensemble = ensemble
        self._spans: dict[str, _Span] = {}

    def clear(self) -> None:
        self._spans.clear()

    def gather(self, requests: Sequence[Request]) -> tuple[Array, Array, Array]:
        """Per-model prob_up and confidence (B, M) and the fusion context (B, C) of each
        request's window, as `Ensemble.infer` gives them."""
        spans = [self._span(*request) for request in requests]
        rows = np.array([r[2] - span.start for r, span in zip(requests, spans, strict=True)])
        first = spans[0]
        prob = np.empty((len(requests), first.prob.shape[1]))
        confidence = np.empty_like(prob)
        context = np.empty((len(requests), first.context.shape[1]))
        groups: dict[int, list[int]] = {}
        for k, span in enumerate(spans):
            groups.setdefault(id(span), []).append(k)
        for members in groups.values():
            span, picked = spans[members[0]], rows[members]
            prob[members] = span.prob[picked]
            confidence[members] = span.confidence[picked]
            context[members] = span.context[picked]
        return prob, confidence, context

    def _span(self, symbol: str, table: Array, position: int, frozen: int) -> _Span:
        span = self._spans.get(symbol)
        if span is None or not span.covers(table, position):
            span = self._spans[symbol] = self._compute(table, position, frozen)
        return span

    def _compute(self, table: Array, position: int, frozen: int) -> _Span:
        """Outputs for the windows ending at rows position .. position + frozen - 1."""
        lookback = self.ensemble.lookback
        rows = table[position + 1 - lookback : min(position + frozen, len(table))]
        windows = sliding_window_view(rows, lookback, axis=0).transpose(0, 2, 1)
        return _Span(table, position, *self.ensemble.infer(windows))
