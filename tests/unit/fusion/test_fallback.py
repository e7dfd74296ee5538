"""Graceful degradation: disabled / insufficient samples / wrong model count -> simple average."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from structlog.testing import capture_logs

from tests.unit.fusion.helpers import feed, informative_stream, make_fusion
from titan.fusion import resolve_device
from titan.models.base import ModelOutput

PROBS = [0.61, 0.73, 0.42, 0.58]


def _outputs(probs: list[float]) -> list[ModelOutput]:
    return [ModelOutput(p, 0.5) for p in probs]


def _fallback_events(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == "fusion_fallback"]


def test_disabled_equals_simple_average_exactly_and_logs_once() -> None:
    fusion = make_fusion(enabled=False, min_samples=0)
    feed(fusion, informative_stream(300))
    assert fusion.trainer.steps == 0  # disabled: nothing is trained
    with capture_logs() as logs:
        for _ in range(3):
            up, down = fusion.forward(_outputs(PROBS))
    assert up == sum(PROBS) / 4 and down == 1.0 - up
    assert fusion.fallback_reason == "disabled"
    events = _fallback_events(logs)
    assert len(events) == 1 and events[0]["reason"] == "disabled"
    batch = fusion.forward_batch(np.array([PROBS, PROBS[::-1]]), np.full((2, 4), 0.5))
    np.testing.assert_array_equal(batch.prob_up, np.mean([PROBS, PROBS[::-1]], axis=1))
    np.testing.assert_array_equal(batch.attention, np.full((2, 4), 0.25))


def test_insufficient_samples_falls_back_until_exactly_min_samples() -> None:
    stream = informative_stream(120)
    fusion = make_fusion(min_samples=100)
    feed(fusion, stream.rows(0, 99))
    assert fusion.forward(_outputs(PROBS))[0] == sum(PROBS) / 4
    assert fusion.fallback_reason == "insufficient_samples"
    assert fusion.trainer.steps > 0  # it trains during warm-up, it just does not decide yet
    feed(fusion, stream.rows(99, 100))
    up, _ = fusion.forward(_outputs(PROBS))
    assert fusion.fallback_reason is None and fusion.is_active
    assert up != sum(PROBS) / 4


def test_wrong_model_count_averages_what_was_given() -> None:
    fusion = make_fusion(min_samples=0)
    feed(fusion, informative_stream(100))
    with capture_logs() as logs:
        up, _ = fusion.forward(_outputs(PROBS[:3]))
        fusion.forward(_outputs([*PROBS, 0.9]))
    assert up == sum(PROBS[:3]) / 3
    assert fusion.fallback_reason == "wrong_model_count"
    assert [e["reason"] for e in _fallback_events(logs)] == ["wrong_model_count"]
    batch = fusion.forward_batch(np.array([PROBS[:2]]), np.ones((1, 2)))
    assert batch.prob_up[0] == (PROBS[0] + PROBS[1]) / 2


def test_fallback_average_skips_missing_models() -> None:
    fusion = make_fusion()
    up, _ = fusion.forward(_outputs([0.8, math.nan, 0.6, math.nan]))
    assert up == (0.8 + 0.6) / 2  # not (0.8 + 0.5 + 0.6 + 0.5) / 4
    assert fusion.get_last_attention_weights() == {
        "model_0": 0.5,
        "model_1": 0.0,
        "model_2": 0.5,
        "model_3": 0.0,
    }
    assert fusion.forward(_outputs([math.nan] * 4)) == (0.5, 0.5)


def test_update_with_wrong_count_is_rejected_and_counted() -> None:
    fusion = make_fusion()
    with capture_logs() as logs:
        fusion.update(_outputs(PROBS[:3]), None, "UP")
        fusion.update_batch(np.full((5, 2), 0.5), np.ones((5, 2)), ["DOWN"] * 5)
    assert fusion.samples_seen == 0
    assert fusion.get_training_stats()["samples_rejected"] == 6
    assert sum(e["event"] == "fusion_sample_rejected" for e in logs) == 1


def test_sample_with_every_model_missing_is_skipped() -> None:
    fusion = make_fusion()
    fusion.update(_outputs([math.nan] * 4), None, "UP")
    fusion.update(_outputs(PROBS), None, "UP")
    stats = fusion.get_training_stats()
    assert (stats["samples_seen"], stats["samples_skipped"]) == (1, 1)


@pytest.mark.parametrize("bad", ["up", "FLAT", "", None, 1])
def test_update_rejects_anything_but_up_or_down(bad: object) -> None:
    fusion = make_fusion()
    with pytest.raises(ValueError, match="UP"):
        fusion.update(_outputs(PROBS), None, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="UP"):
        fusion.update_batch(np.full((2, 4), 0.5), np.ones((2, 4)), ["UP", bad])  # type: ignore[list-item]
    assert fusion.samples_seen == 0  # a bad batch changes nothing


def test_device_auto_picks_cuda_only_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    assert make_fusion().network.head.weight.device.type == "cpu"
