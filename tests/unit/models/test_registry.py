"""Model factory (titan.models.registry) and the [models] config section."""

from __future__ import annotations

from typing import get_args

import pydantic
import pytest

from titan.config.models import DEFAULT_MODELS, LightGBMConfig, ModelName, ModelsConfig
from titan.features.spec import WARMUP
from titan.models.base import BaseModel
from titan.models.lgbm import MLClassifier
from titan.models.registry import MODEL_NAMES, build_model, build_models
from titan.models.rules import Oscillator, TrendVIC, VolumeMetrix


def test_every_config_model_name_has_a_factory_in_default_order() -> None:
    """Classic models come from this registry, neural ones from `titan.models.neural`."""
    from titan.models.neural.registry import NEURAL_NAMES

    assert MODEL_NAMES == DEFAULT_MODELS
    assert set(get_args(ModelName)) == set(MODEL_NAMES) | set(NEURAL_NAMES)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("trend_vic", TrendVIC),
        ("oscillator", Oscillator),
        ("volume_metrix", VolumeMetrix),
        ("ml_classifier", MLClassifier),
    ],
)
def test_build_model_returns_a_fresh_model_of_that_name(name: str, cls: type) -> None:
    model = build_model(name)
    assert isinstance(model, cls) and isinstance(model, BaseModel) and model.name == name
    assert build_model(name) is not model


def test_unknown_model_name_is_an_error_listing_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'lstm'.*trend_vic"):
        build_model("lstm")


def test_build_models_follows_enabled_order() -> None:
    config = ModelsConfig(enabled=("ml_classifier", "oscillator"))
    assert [m.name for m in build_models(config)] == ["ml_classifier", "oscillator"]


def test_config_reaches_the_models() -> None:
    config = ModelsConfig(horizon=3, lightgbm=LightGBMConfig(lookback=5, seed=9))
    ml = build_model("ml_classifier", config)
    assert isinstance(ml, MLClassifier)
    assert ml.input_spec.lookback == 5 and ml.purge == 3 + 5 + WARMUP and ml.config.seed == 9
    rule = build_model("trend_vic", ModelsConfig.model_validate({"calibration": {"l2": 0.5}}))
    assert isinstance(rule, TrendVIC) and rule.calibrator.l2 == 0.5


def test_models_config_defaults() -> None:
    config = ModelsConfig()
    assert config.enabled == DEFAULT_MODELS and config.horizon == 1
    assert (config.refit_every, config.train_window) == (10_080, 10_080)
    assert config.lightgbm.threads == 1 and config.lightgbm.num_leaves == 15


def test_the_ml_classifier_purges_horizon_window_and_feature_lookback() -> None:
    config = ModelsConfig(horizon=2, extra_purge=5)
    model = build_model("ml_classifier", config)
    assert isinstance(model, MLClassifier)
    assert model.purge == 2 + config.lightgbm.lookback + WARMUP + 5


@pytest.mark.parametrize(
    "data",
    [
        {"enabled": ["trend_vic", "trend_vic"]},
        {"enabled": ["gpt"]},
        {"horizon": 0},
        {"min_train": 20_000},
        {"lightgbm": {"num_leaves": 1}},
        {"lightgbm": {"valid_fraction": 1.0}},
        {"unknown_key": 1},
        {"lightgbm": {"unknown_key": 1}},
    ],
)
def test_invalid_models_config_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        ModelsConfig.model_validate(data)


def test_models_config_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        ModelsConfig().horizon = 2  # type: ignore[misc]
