"""save/load: bit-identical outputs, identical continued training, refusal of misfits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.unit.fusion.helpers import feed, make_fusion, params, rich_stream
from titan.fusion import CheckpointError, TransformerFusion

SETTINGS: dict[str, object] = {
    "min_samples": 100,
    "train_every": 2,
    "buffer_size": 300,
    "val_every": 2,
}


def _trained(stream) -> TransformerFusion:
    fusion = make_fusion(stream, **SETTINGS)
    feed(fusion, stream.rows(0, 400))
    return fusion


def test_save_writes_both_files(tmp_path: Path) -> None:
    fusion = _trained(rich_stream(400))
    fusion.save(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {
        "fusion_model.pt",
        "fusion_state.json",
    }
    state = json.loads((tmp_path / "ckpt" / "fusion_state.json").read_text())
    assert state["samples_seen"] == 400 and state["train_steps"] == fusion.trainer.steps


def test_load_gives_bit_identical_outputs_and_stats(tmp_path: Path) -> None:
    stream = rich_stream(600)
    original = _trained(stream)
    original.forward(stream.outputs(0), stream.features(0))
    original.save(tmp_path)
    restored = make_fusion(stream, **SETTINGS)
    restored.load(tmp_path)
    block = stream.rows(400, 600)
    a = original.forward_batch(block.prob, block.confidence, block.extras, block.context)
    b = restored.forward_batch(block.prob, block.confidence, block.extras, block.context)
    np.testing.assert_array_equal(a.prob_up, b.prob_up)
    np.testing.assert_array_equal(a.attention, b.attention)
    assert original.get_training_stats() == restored.get_training_stats()
    assert original.get_attention_weights() == restored.get_attention_weights()


def test_continued_training_follows_the_same_trajectory(tmp_path: Path) -> None:
    """Save mid-stream, reload, train on (through early-stopping pauses): identical."""
    stream = rich_stream(800, seed=4)
    original = _trained(stream)
    original.save(tmp_path)
    stops_at_save = original.get_training_stats()["early_stops"]
    restored = make_fusion(stream, **SETTINGS)
    restored.load(tmp_path)
    feed(original, stream.rows(400, 800))
    feed(restored, stream.rows(400, 800))
    assert original.trainer.steps > 150
    assert original.get_training_stats()["early_stops"] > stops_at_save  # pauses included
    for a, b in zip(params(original), params(restored), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(original.trainer.best_weights, restored.trainer.best_weights)
    assert original.get_training_stats() == restored.get_training_stats()
    x = stream.rows(700, 800)
    np.testing.assert_array_equal(
        original.forward_batch(x.prob, x.confidence, x.extras, x.context).prob_up,
        restored.forward_batch(x.prob, x.confidence, x.extras, x.context).prob_up,
    )


def test_load_refuses_a_checkpoint_of_another_shape(tmp_path: Path) -> None:
    stream = rich_stream(400)
    _trained(stream).save(tmp_path)
    with pytest.raises(CheckpointError, match="context_features"):
        make_fusion(buffer_size=300).load(tmp_path)  # 4 models, but no context/extras
    three = TransformerFusion(
        make_fusion().config.model_copy(update={"buffer_size": 300}),
        3,
        context_features=("close_z", "rsi", "volatility"),
        extra_features=("ret",),
    )
    with pytest.raises(CheckpointError, match="n_models"):
        three.load(tmp_path)
    wider = make_fusion(stream, hidden_dim=64, buffer_size=300)
    with pytest.raises(CheckpointError, match="hidden_dim"):
        wider.load(tmp_path)


def test_load_detects_a_corrupt_or_mismatched_model_file(tmp_path: Path) -> None:
    stream = rich_stream(400)
    _trained(stream).save(tmp_path)
    model = tmp_path / "fusion_model.pt"
    model.write_bytes(model.read_bytes()[:-10])
    fresh = make_fusion(stream, **SETTINGS)
    with pytest.raises(CheckpointError, match="checksum"):
        fresh.load(tmp_path)
    assert fresh.samples_seen == 0  # nothing half-restored
    with pytest.raises(CheckpointError, match="cannot read"):
        fresh.load(tmp_path / "missing")
