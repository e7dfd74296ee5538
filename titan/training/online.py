"""Replay a stream of model predictions through the TransformerFusion, as the engine does.

Row i is decided at its candle and its outcome becomes known ``horizon`` candles later:
the decision at row i sees only the outcomes of rows ``<= i - horizon - 1`` (the engine
decides before it resolves the outcomes of the same candle). Decisions are batched
between the points where the fusion's answer may change (`updates_until_change`), which
gives exactly what one-by-one replay gives. Ties are not passed to the fusion.
"""

from __future__ import annotations

import numpy as np

from titan.config.fusion import FusionConfig
from titan.fusion import TransformerFusion
from titan.models.base import FloatArray


def replay_fusion(
    prob: FloatArray,
    confidence: FloatArray,
    outcome: FloatArray,
    context: FloatArray,
    context_features: tuple[str, ...],
    config: FusionConfig,
    horizon: int = 1,
) -> tuple[FloatArray, FloatArray]:
    """Fused P(up) per row (N,) and the fraction of rows the network (not the average) gave."""
    fusion = TransformerFusion(config, prob.shape[1], context_features=context_features)
    n = prob.shape[0]
    fused, active = np.full(n, np.nan), np.zeros(n, dtype=bool)
    i = 0
    while i < n:
        j = min(n, i + max(1, fusion.updates_until_change()))
        out = fusion.forward_batch(prob[i:j], confidence[i:j], None, context[i:j])
        fused[i:j], active[i:j] = out.prob_up, fusion.fallback_reason is None
        _learn(fusion, prob, confidence, outcome, context, max(0, i - horizon), max(0, j - horizon))
        i = j
    return fused, active.astype(np.float64)


def _learn(
    fusion: TransformerFusion,
    prob: FloatArray,
    confidence: FloatArray,
    outcome: FloatArray,
    context: FloatArray,
    start: int,
    stop: int,
) -> None:
    rows = np.arange(start, stop)
    rows = rows[np.isfinite(outcome[rows])]
    if rows.size == 0:
        return
    directions = ["UP" if outcome[r] == 1.0 else "DOWN" for r in rows]
    fusion.update_batch(
        prob[rows], np.nan_to_num(confidence[rows]), directions, None, context[rows]
    )
