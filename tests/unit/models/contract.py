"""The shared base-model contract suite (DESIGN.md §3), reusable by every model family.

Use it from a test module::

    CASES = [ContractCase("my_model", lambda seed: MyModel(seed=seed))]

    @pytest.fixture(params=CASES, ids=lambda c: c.name)
    def case(request: pytest.FixtureRequest) -> ContractCase:
        return request.param

    class TestMyModelContract(ModelContract):
        pass

Every test gets a fresh model from ``case.make(seed)`` and trains it on `contract_data`:
windows sliced from the bundled BTC 1m sample's real feature table when the model's
features are all standard feature names, seeded synthetic windows otherwise.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl
import pytest

from tests.conftest import SAMPLE_DIR
from titan.features import FEATURE_NAMES, feature_matrix
from titan.models.base import BaseModel, BatchOutput, FloatArray, InputSpec
from titan.models.dataset import feature_columns, supervised

SAMPLE_FILE = SAMPLE_DIR / "binanceusdm_BTCUSDT_1m.parquet"


@dataclass(frozen=True)
class ContractCase:
    """How to build one model for the contract suite."""

    name: str
    make: Callable[[int], BaseModel]
    """seed -> a fresh, unfitted model."""
    n_train: int = 2000
    batch_atol: float = 0.0
    """Allowed |batch - one-by-one| (0: bit-identical)."""


@cache
def sample_table() -> tuple[FloatArray, FloatArray]:
    """(feature table, closes) of the bundled BTC 1m sample (43k candles), computed once."""
    frame = pl.read_parquet(SAMPLE_FILE)
    return feature_matrix(frame), frame.get_column("close").to_numpy().astype(np.float64)


def contract_data(spec: InputSpec, n: int, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """n chronological windows (n, lookback, F) and their labels (ties NaN)."""
    if set(spec.features) <= set(FEATURE_NAMES):
        table, close = sample_table()
        data = supervised(table[:, feature_columns(spec)], close, spec.lookback, horizon=1)
        assert len(data) >= n, "contract sample too short"
        return np.array(data.windows[:n]), data.labels[:n]
    rng = np.random.default_rng(seed)
    windows = rng.normal(size=(n, spec.lookback, len(spec.features)))
    labels = (windows[:, -1, 0] + rng.normal(size=n) > 0).astype(np.float64)
    return windows, labels


def fitted(case: ContractCase, seed: int = 0) -> tuple[BaseModel, FloatArray]:
    """A model fitted on the case's training data, and held-out windows to predict."""
    model = case.make(seed)
    windows, labels = contract_data(model.input_spec, case.n_train + 300)
    model.fit(windows[: case.n_train], labels[: case.n_train])
    return model, windows[case.n_train :]


def edge_windows(spec: InputSpec) -> FloatArray:
    """Finite but extreme windows: zeros, constants, huge, tiny, alternating signs."""
    shape = (spec.lookback, len(spec.features))
    alternating = np.where(np.indices(shape).sum(axis=0) % 2 == 0, 1e3, -1e3)
    batch = [np.full(shape, value) for value in (0.0, 1.0, -1.0, 1e6, -1e6, 1e-12, -1e-12)]
    return np.stack([*batch, alternating])


def assert_same_output(a: BatchOutput, b: BatchOutput, atol: float = 0.0) -> None:
    np.testing.assert_allclose(a.prob_up, b.prob_up, rtol=0, atol=atol)
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=0, atol=atol)
    assert set(a.extras) == set(b.extras)
    for name in a.extras:
        np.testing.assert_allclose(a.extras[name], b.extras[name], rtol=0, atol=atol)


def assert_valid(out: BatchOutput, n: int) -> None:
    """n rows; finite prob_up and confidence in [0, 1]; extras one value per row."""
    assert out.prob_up.shape == (n,) and out.confidence.shape == (n,)
    assert np.isfinite(out.prob_up).all() and np.isfinite(out.confidence).all()
    assert ((out.prob_up >= 0) & (out.prob_up <= 1)).all()
    assert ((out.confidence >= 0) & (out.confidence <= 1)).all()
    assert all(values.shape == (n,) for values in out.extras.values())


class ModelContract:
    """The contract; subclass it as ``Test...`` next to a ``case`` fixture."""

    def test_implements_the_base_model_protocol(self, case: ContractCase) -> None:
        model = case.make(0)
        assert isinstance(model, BaseModel)
        assert isinstance(model.name, str) and model.name
        assert model.input_spec.lookback >= 1 and len(model.input_spec.features) >= 1

    def test_unfitted_model_predicts_missing_not_half(self, case: ContractCase) -> None:
        model = case.make(0)
        windows, _ = contract_data(model.input_spec, 5)
        out = model.predict(windows)
        assert np.isnan(out.prob_up).all()
        assert (out.confidence == 0.0).all()

    def test_fitted_model_outputs_valid_probabilities(self, case: ContractCase) -> None:
        model, held_out = fitted(case)
        assert_valid(model.predict(held_out), held_out.shape[0])
        assert model.parameter_count() > 0

    def test_checkpoint_round_trip_gives_identical_outputs(self, case: ContractCase) -> None:
        model, held_out = fitted(case)
        state = pickle.loads(pickle.dumps(model.state_dict()))
        restored = case.make(1)
        restored.load_state_dict(state)
        assert_same_output(model.predict(held_out), restored.predict(held_out))
        assert restored.parameter_count() == model.parameter_count()

    def test_unfitted_checkpoint_restores_an_unfitted_model(self, case: ContractCase) -> None:
        model, held_out = fitted(case)
        model.load_state_dict(case.make(0).state_dict())
        assert np.isnan(model.predict(held_out).prob_up).all()

    def test_state_of_another_model_is_refused(self, case: ContractCase) -> None:
        model = case.make(0)
        with pytest.raises((ValueError, KeyError, RuntimeError)):
            model.load_state_dict({"model": "not-" + model.name})

    def test_same_seed_same_data_gives_identical_outputs(self, case: ContractCase) -> None:
        first, held_out = fitted(case, seed=7)
        second, _ = fitted(case, seed=7)
        assert_same_output(first.predict(held_out), second.predict(held_out))

    def test_batch_prediction_equals_one_by_one(self, case: ContractCase) -> None:
        model, held_out = fitted(case)
        windows = held_out[:40]
        batch = model.predict(windows)
        rows = [model.predict(windows[i : i + 1]) for i in range(windows.shape[0])]
        single = BatchOutput(
            np.concatenate([r.prob_up for r in rows]),
            np.concatenate([r.confidence for r in rows]),
            {k: np.concatenate([r.extras[k] for r in rows]) for k in batch.extras},
        )
        assert_same_output(batch, single, case.batch_atol)

    def test_no_nan_on_edge_inputs(self, case: ContractCase) -> None:
        model, _ = fitted(case)
        windows = edge_windows(model.input_spec)
        assert_valid(model.predict(windows), windows.shape[0])

    def test_empty_batch_gives_empty_outputs(self, case: ContractCase) -> None:
        model, held_out = fitted(case)
        out = model.predict(held_out[:0])
        assert len(out) == 0 and out.confidence.shape == (0,)

    def test_non_finite_window_is_missing_and_leaves_others_alone(self, case: ContractCase) -> None:
        model, held_out = fitted(case)
        windows = held_out[:6].copy()
        windows[1, -1, 0] = np.nan
        windows[3, 0, -1] = np.inf
        out, clean = model.predict(windows), model.predict(held_out[:6])
        bad = np.array([False, True, False, True, False, False])
        assert np.isnan(out.prob_up[bad]).all() and (out.confidence[bad] == 0.0).all()
        np.testing.assert_array_equal(out.prob_up[~bad], clean.prob_up[~bad])

    def test_ties_are_excluded_from_fitting(self, case: ContractCase) -> None:
        """Extra windows labelled NaN (ties) change nothing in the fitted model."""
        model = case.make(0)
        windows, labels = contract_data(model.input_spec, case.n_train + 300)
        train_w, train_y, held_out = windows[: case.n_train], labels[: case.n_train], windows[-300:]
        train_y = np.where(np.isnan(train_y), 1.0, train_y)  # only the inserted ties are ties
        model.fit(train_w, train_y)
        spots = np.random.default_rng(3).choice(case.n_train, size=case.n_train // 10)
        with_ties = case.make(0)
        with_ties.fit(
            np.insert(train_w, spots, held_out[0], axis=0), np.insert(train_y, spots, np.nan)
        )
        assert_same_output(model.predict(held_out), with_ties.predict(held_out))

    def test_works_on_cpu_without_cuda(
        self, case: ContractCase, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        torch = pytest.importorskip("torch")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
        model, held_out = fitted(case)
        out = model.predict(held_out)
        assert isinstance(out.prob_up, np.ndarray) and out.prob_up.dtype == np.float64
        assert_valid(out, held_out.shape[0])
