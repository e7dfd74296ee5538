"""The model registry: versioned atomic checkpoints, newest valid one loaded, pruning."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from structlog.testing import capture_logs

from tests.unit.models.neural.fixtures import TINY, bundled_samples
from titan.models.neural.model import NeuralModel
from titan.models.neural.registry import build_neural
from titan.training.registry import META, STATE, ModelRegistry

META_IN = {"data": {"symbols": ["BTC/USDT"]}, "metrics": {"log_loss": 0.69}}


@cache
def _fitted(seed: int) -> NeuralModel:
    data = bundled_samples(3000)
    model = build_neural("cnn", TINY.model_copy(update={"seed": seed}))
    model.fit_returns(data.windows[:2000], data.returns[:2000])
    assert model.is_fitted
    return model


def _held_out() -> np.ndarray:
    return np.asarray(bundled_samples(3000).windows[2500:2600])


def test_versions_increase_and_the_newest_is_loaded_with_its_meta(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.save(_fitted(0), META_IN, created_ms=1)
    second = registry.save(_fitted(1), META_IN, created_ms=2)
    assert registry.versions("cnn") == [2, 1] and second.version == 2
    fresh = build_neural("cnn", TINY)
    loaded = registry.load_latest(fresh)
    assert loaded is not None and loaded.version == 2
    np.testing.assert_array_equal(
        fresh.predict(_held_out()).prob_up, _fitted(1).predict(_held_out()).prob_up
    )
    meta = loaded.meta
    assert meta["model"] == "cnn" and meta["created_ms"] == 2 and meta["code_version"]
    assert meta["parameters"] == _fitted(1).parameter_count() and meta["data"] == META_IN["data"]
    assert not list(tmp_path.rglob(".tmp-*"))


def test_a_corrupt_newest_version_falls_back_to_the_previous_with_an_error(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.save(_fitted(0), META_IN, created_ms=1)
    newest = registry.save(_fitted(1), META_IN, created_ms=2)
    state = newest.path / STATE
    state.write_bytes(state.read_bytes()[:-10] + b"0123456789")
    fresh = build_neural("cnn", TINY)
    with capture_logs() as logs:
        loaded = registry.load_latest(fresh)
    assert loaded is not None and loaded.version == 1
    assert any(e["event"] == "model_checkpoint_invalid" for e in logs)
    np.testing.assert_array_equal(
        fresh.predict(_held_out()).prob_up, _fitted(0).predict(_held_out()).prob_up
    )
    assert registry.latest_meta("cnn") == loaded.meta


def test_a_checkpoint_of_another_architecture_is_skipped(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.save(_fitted(0), META_IN, created_ms=1)
    registry.save(build_neural("cnn"), META_IN, created_ms=2)  # default (full-size) CNN
    fresh = build_neural("cnn", TINY)
    loaded = registry.load_latest(fresh)
    assert loaded is not None and loaded.version == 1 and fresh.is_fitted


def test_old_versions_are_pruned_and_an_empty_registry_loads_nothing(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path, keep=2)
    for created in range(3):
        registry.save(_fitted(0), META_IN, created_ms=created)
    assert registry.versions("cnn") == [3, 2]
    assert (tmp_path / "cnn" / "ckpt-000000000003" / META).is_file()
    assert ModelRegistry(tmp_path / "empty").load_latest(build_neural("cnn", TINY)) is None
