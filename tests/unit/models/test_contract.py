"""The four base models pass the shared model contract (DESIGN.md §3)."""

from __future__ import annotations

import pytest

from tests.unit.models.contract import ContractCase, ModelContract
from titan.config.models import LightGBMConfig, ModelsConfig
from titan.models.registry import build_model


def _registry(name: str) -> ContractCase:
    return ContractCase(name, lambda seed: build_model(name, _config(seed)))


def _config(seed: int) -> ModelsConfig:
    return ModelsConfig(lightgbm=LightGBMConfig(seed=seed, n_estimators=60, threads=1))


CASES = [_registry(name) for name in ("trend_vic", "oscillator", "volume_metrix", "ml_classifier")]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> ContractCase:
    return request.param  # type: ignore[no-any-return]


class TestBaseModelContract(ModelContract):
    pass
