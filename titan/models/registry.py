"""Model factory: a config name -> a fresh, unfitted base model.

Names (``titan.config.models.ModelName``): ``trend_vic``, ``oscillator``,
``volume_metrix``, ``ml_classifier``. `DEFAULT_MODELS` is their fusion order.
"""

from __future__ import annotations

from collections.abc import Callable

from titan.config.models import DEFAULT_MODELS, ModelsConfig
from titan.models.base import BaseModel
from titan.models.dataset import purge_gap
from titan.models.lgbm import MLClassifier
from titan.models.rules import Oscillator, RuleModel, TrendVIC, VolumeMetrix

__all__ = ["DEFAULT_MODELS", "MODEL_NAMES", "build_model", "build_models"]


def _rule(cls: type[RuleModel]) -> Callable[[ModelsConfig], BaseModel]:
    def build(config: ModelsConfig) -> BaseModel:
        return cls(l2=config.calibration.l2, min_samples=config.calibration.min_samples)

    return build


def _ml_classifier(config: ModelsConfig) -> BaseModel:
    lookback = config.lightgbm.lookback
    return MLClassifier(
        config.lightgbm, purge=purge_gap(config.horizon, lookback, config.extra_purge)
    )


_FACTORIES: dict[str, Callable[[ModelsConfig], BaseModel]] = {
    "trend_vic": _rule(TrendVIC),
    "oscillator": _rule(Oscillator),
    "volume_metrix": _rule(VolumeMetrix),
    "ml_classifier": _ml_classifier,
}
MODEL_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def build_model(name: str, config: ModelsConfig | None = None) -> BaseModel:
    """A fresh model called `name`, configured from `config` (defaults when None)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}") from None
    return factory(config or ModelsConfig())


def build_models(config: ModelsConfig | None = None) -> list[BaseModel]:
    """The enabled models, in `config.enabled` order."""
    cfg = config or ModelsConfig()
    return [build_model(name, cfg) for name in cfg.enabled]
