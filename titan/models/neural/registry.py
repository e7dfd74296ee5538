"""Factories for the neural base models, by name, for `titan.models.registry`.

Names: ``lstm``, ``cnn``, ``attention``, ``neural_ensemble`` (the EnsembleModel over the
other three) and ``multiscale_cnn``. `NEURAL_FACTORIES` maps each to a
``ModelsConfig -> BaseModel`` factory, the shape `titan.models.registry._FACTORIES`
uses: the architecture comes from ``ModelsConfig.neural`` when that section exists
(defaults otherwise) and the purge gap from `titan.models.dataset.purge_gap` (horizon +
lookback + feature warm-up + ``ModelsConfig.extra_purge``).
"""

from __future__ import annotations

from collections.abc import Callable

from titan.config.models import ModelsConfig
from titan.config.training import NeuralConfig
from titan.features.spec import FEATURE_NAMES
from titan.models.base import BaseModel
from titan.models.dataset import purge_gap
from titan.models.neural.attention import AttentionModel
from titan.models.neural.cnn import CNNModel, MultiScaleCNN
from titan.models.neural.lstm import LSTMModel
from titan.models.neural.meta import NeuralEnsemble
from titan.models.neural.model import Builder, NeuralModel

NEURAL_NAMES: tuple[str, ...] = ("lstm", "cnn", "attention", "neural_ensemble", "multiscale_cnn")
N_FEATURES = len(FEATURE_NAMES)


def builders(c: NeuralConfig) -> dict[str, Builder]:
    """Network constructors (unseeded; `NeuralModel` seeds them) for the single learners."""
    return {
        "lstm": lambda: LSTMModel(
            N_FEATURES, c.lstm_hidden, c.lstm_layers, c.dropout, c.lstm_bidirectional
        ),
        "cnn": lambda: CNNModel(
            N_FEATURES, c.lookback, c.cnn_filters, c.cnn_kernels, c.cnn_fc, c.dropout
        ),
        "attention": lambda: AttentionModel(
            N_FEATURES,
            c.lookback,
            c.attention_dim,
            c.attention_heads,
            c.attention_blocks,
            c.attention_ffn,
            c.attention_fc,
            c.dropout,
            c.positional,
        ),
        "multiscale_cnn": lambda: MultiScaleCNN(N_FEATURES, c.cnn_filters, c.cnn_fc, c.dropout),
    }


def build_neural(
    name: str, config: NeuralConfig | None = None, purge: int | None = None
) -> NeuralModel:
    """A fresh, unfitted neural model called `name`."""
    cfg = config or NeuralConfig()
    makers = builders(cfg)
    if name == "neural_ensemble":
        return NeuralEnsemble(makers, cfg, purge)
    if name not in makers:
        raise ValueError(f"unknown neural model {name!r}; known: {', '.join(NEURAL_NAMES)}")
    return NeuralModel(name, makers[name], cfg, purge)


def neural_config(models: ModelsConfig) -> NeuralConfig:
    """``models.neural`` when the section exists, else the defaults."""
    section = getattr(models, "neural", None)
    return section if isinstance(section, NeuralConfig) else NeuralConfig()


def neural_factory(name: str) -> Callable[[ModelsConfig], BaseModel]:
    if name not in NEURAL_NAMES:
        raise ValueError(f"unknown neural model {name!r}; known: {', '.join(NEURAL_NAMES)}")

    def build(models: ModelsConfig) -> BaseModel:
        cfg = neural_config(models)
        purge = purge_gap(models.horizon, cfg.lookback, models.extra_purge)
        return build_neural(name, cfg, purge=purge)

    return build


NEURAL_FACTORIES: dict[str, Callable[[ModelsConfig], BaseModel]] = {
    name: neural_factory(name) for name in NEURAL_NAMES
}
