"""Lookahead: base-model outputs run ahead over feature tables equal per-window inference."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from titan.engine.ensemble import Ensemble
from titan.engine.lookahead import Lookahead


class _Models:
    """Stands in for `Ensemble.infer`: a different function of every window row."""

    lookback = 3

    def __init__(self) -> None:
        self.calls: list[int] = []

    def infer(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.calls.append(len(windows))
        prob = windows[:, :, :2].sum(axis=1) + 0.5 * windows[:, -1, 2:4]
        return prob, np.tanh(prob), windows[:, -1, 4:7]


def _windows(table: np.ndarray, positions: list[int]) -> np.ndarray:
    return np.stack([table[p - 2 : p + 1] for p in positions])


def test_gathered_outputs_equal_inference_on_each_window() -> None:
    rng = np.random.default_rng(3)
    btc, eth = rng.normal(size=(500, 40)), rng.normal(size=(500, 40))
    models = _Models()
    lookahead = Lookahead(cast(Ensemble, models))
    requests: list[Any] = []
    for position in range(10, 60):  # a span of 30 rows, then a new one
        frozen = 30 - (position - 10) % 30
        requests += [("BTC", btc, position, frozen), ("ETH", eth, position + 5, frozen)]
    got = lookahead.gather(requests)
    assert models.calls == [30, 30, 30, 30]  # one inference per symbol and span
    expected_btc = models.infer(_windows(btc, list(range(10, 60))))
    expected_eth = models.infer(_windows(eth, list(range(15, 65))))
    for k in range(3):
        np.testing.assert_array_equal(got[k][0::2], expected_btc[k])
        np.testing.assert_array_equal(got[k][1::2], expected_eth[k])


def test_clear_forgets_outputs_of_changed_models() -> None:
    table = np.random.default_rng(4).normal(size=(100, 40))
    models = _Models()
    lookahead = Lookahead(cast(Ensemble, models))
    lookahead.gather([("BTC", table, 20, 50)])
    lookahead.gather([("BTC", table, 21, 49)])
    lookahead.clear()
    lookahead.gather([("BTC", table, 22, 48)])
    assert models.calls == [50, 48]
