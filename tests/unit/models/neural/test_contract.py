"""The neural base models pass the shared model contract (DESIGN.md §3).

Tiny training budgets (a few optimiser steps on 600 windows of the bundled BTC sample):
the contract checks behaviour (round trips, determinism, batching, missing values),
not skill. Batched and one-by-one float32 forward passes may differ in the last bits,
hence ``batch_atol``.
"""

from __future__ import annotations

import pytest

from tests.unit.models.contract import ContractCase, ModelContract
from titan.config.training import NeuralConfig, TrainerConfig
from titan.models.base import BaseModel
from titan.models.neural.registry import build_neural

FAST = TrainerConfig(max_steps=5, eval_every=5, batch_size=32)


def _case(name: str, n_train: int = 600) -> ContractCase:
    def make(seed: int) -> BaseModel:
        return build_neural(name, NeuralConfig(seed=seed, min_samples=100, trainer=FAST))

    return ContractCase(name, make, n_train=n_train, batch_atol=1e-6)


CASES = [
    _case("lstm"),
    _case("cnn"),
    _case("attention"),
    _case("neural_ensemble", n_train=800),
    _case("multiscale_cnn"),
]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> ContractCase:
    return request.param  # type: ignore[no-any-return]


class TestNeuralModelContract(ModelContract):
    pass
