"""The feature set's declared shape: names, warm-ups, documentation."""

from __future__ import annotations

import numpy as np

from tests.unit.features.helpers import random_walk
from titan.features import FEATURE_NAMES, NUM_FEATURES, WARMUP, WARMUPS, compute_features, spec


def test_feature_set_has_forty_unique_names() -> None:
    assert NUM_FEATURES == len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 40


def test_feature_set_is_ohlcv_plus_typical_price_plus_34_indicators() -> None:
    price = ("open", "high", "low", "close", "volume", "hlc3")
    assert FEATURE_NAMES[:6] == price
    assert len(FEATURE_NAMES[6:]) == 34


def test_warmup_is_the_longest_feature_warmup() -> None:
    assert WARMUP == max(WARMUPS.values()) == 49
    assert set(WARMUPS) == set(FEATURE_NAMES)


def test_every_feature_has_a_row_in_the_spec_docstring_table() -> None:
    doc_rows = {line.split()[0] for line in (spec.__doc__ or "").splitlines() if line.strip()}
    assert set(FEATURE_NAMES) <= doc_rows


def test_batch_rows_are_nan_exactly_before_each_documented_warmup() -> None:
    table = compute_features(*random_walk(400, seed=3))
    for column, name in enumerate(FEATURE_NAMES):
        defined = np.flatnonzero(~np.isnan(table[:, column]))
        assert defined[0] == WARMUPS[name], name
        assert defined.size == table.shape[0] - WARMUPS[name], name
