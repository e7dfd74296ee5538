"""The validation gate: the fusion answers only while it beats the simple average."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.unit.fusion.helpers import feed, informative_stream, make_fusion
from titan.fusion.inputs import simple_average


def noise_stream(n: int, seed: int) -> object:
    """Calibrated, uninformative models (like real 1m forecasts): nothing to learn."""
    stream = informative_stream(n, seed=seed, strength=0.0)
    rng = np.random.default_rng(seed + 7)
    stream.prob[:] = 0.5 + rng.normal(0.0, 0.01, stream.prob.shape)
    return stream


def test_gate_opens_when_the_network_beats_the_average() -> None:
    stream = informative_stream(1500, seed=3)
    fusion = make_fusion(min_samples=100, require_beating_average=True, val_every=5)
    feed(fusion, stream)
    stats = fusion.get_training_stats()
    assert stats["val_loss"] < stats["average_val_loss"]
    result = fusion.forward_batch(stream.prob[:50], stream.confidence[:50])
    assert fusion.fallback_reason is None and fusion.is_active
    assert not np.array_equal(result.prob_up, simple_average(stream.prob[:50])[0])


def test_gate_keeps_the_average_while_the_network_does_not_beat_it() -> None:
    stream = noise_stream(1500, seed=4)
    fusion = make_fusion(min_samples=100, require_beating_average=True, val_every=5)
    closed = 0
    for lo in range(0, 1500, 50):
        block = stream.rows(lo, lo + 50)  # type: ignore[attr-defined]
        result = fusion.forward_batch(block.prob, block.confidence)
        stats = fusion.get_training_stats()
        if fusion.fallback_reason == "not_better_than_average":
            closed += 1
            assert np.array_equal(result.prob_up, simple_average(block.prob)[0])
            assert not stats["val_loss"] < stats["average_val_loss"]
        elif fusion.fallback_reason is None:
            assert stats["val_loss"] < stats["average_val_loss"]
        feed(fusion, block)
    assert closed >= 10  # on noise the network rarely validates better than the average


def test_gate_state_survives_save_and_load(tmp_path: Path) -> None:
    stream = informative_stream(800, seed=5)
    fusion = make_fusion(min_samples=100, require_beating_average=True, val_every=5)
    feed(fusion, stream)
    fusion.save(tmp_path)
    loaded = make_fusion(min_samples=100, require_beating_average=True, val_every=5)
    loaded.load(tmp_path)
    assert (
        loaded.get_training_stats()["average_val_loss"]
        == fusion.get_training_stats()["average_val_loss"]
    )
    a = fusion.forward_batch(stream.prob[:20], stream.confidence[:20])
    b = loaded.forward_batch(stream.prob[:20], stream.confidence[:20])
    assert loaded.fallback_reason == fusion.fallback_reason
    assert np.array_equal(a.prob_up, b.prob_up)
