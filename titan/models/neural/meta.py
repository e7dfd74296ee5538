"""`NeuralEnsemble`: the EnsembleModel behind the base-model contract.

Fit (same filtering, split, scaling and target as `NeuralModel`):

1. Pre-train the LSTM, CNN and attention learners on the training part, each exactly as
   its own `NeuralModel` would (same seeds), early-stopped on the tail -- or reuse
   already trained ones (`fit_from_bases`, the training pipeline's path: no retraining).
2. Freeze them; compute their outputs on the tail once.
3. Train the weight predictor and meta-learner on the tail's first half, early-stopped
   on its second half; the `LogisticCalibrator` for ``prob_up`` is fitted on that second
   half (out of sample for the base learners and, but for early stopping, for the heads).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from titan.config.training import NeuralConfig
from titan.features.spec import FEATURE_NAMES
from titan.models.base import FloatArray
from titan.models.neural.ensemble import BASE_NAMES, EnsembleModel
from titan.models.neural.fitting import predict_chunks
from titan.models.neural.layers import seeded
from titan.models.neural.model import Builder, NeuralModel, Prepared
from titan.models.neural.scaling import FeatureScaler

NAME = "neural_ensemble"


class _Heads(nn.Module):
    """The ensemble's trainable part as a network over stacked base outputs (B, 3)."""

    def __init__(self, ensemble: EnsembleModel) -> None:
        super().__init__()
        self.ensemble = ensemble

    def forward(self, base: Tensor) -> Tensor:
        return self.ensemble.combine(base)[0]


class NeuralEnsemble(NeuralModel):
    def __init__(
        self,
        bases: Mapping[str, Builder],
        config: NeuralConfig | None = None,
        purge: int | None = None,
        features: Sequence[str] = FEATURE_NAMES,
    ) -> None:
        self._bases = {name: bases[name] for name in BASE_NAMES}
        self._pretrained: tuple[list[nn.Module], FeatureScaler] | None = None
        cfg = config or NeuralConfig()

        def build() -> nn.Module:
            return self._ensemble([builder() for builder in self._bases.values()])

        self._heads_config = cfg
        super().__init__(NAME, build, cfg, purge, features)

    def _ensemble(self, bases: list[nn.Module]) -> EnsembleModel:
        c = self._heads_config
        lstm, cnn, attention = bases
        return EnsembleModel(lstm, cnn, attention, c.ensemble_hidden, c.meta_hidden, c.dropout)

    def fit_from_bases(
        self,
        bases: Sequence[NeuralModel],
        windows: FloatArray,
        labels: FloatArray,
        returns: FloatArray | None = None,
    ) -> None:
        """Fit the heads over already trained LSTM, CNN and attention models (in that order)
        that were fitted on these same windows (so they share one feature scaler)."""
        scalers = [base.scaler for base in bases]
        first = scalers[0]
        if len(bases) != len(BASE_NAMES) or first is None:
            raise ValueError("fit_from_bases needs three fitted base models")
        if any(s is None or not s.same_as(first) for s in scalers):
            raise ValueError("base models were fitted on different data (their scalers differ)")
        networks = [copy.deepcopy(base.network) for base in bases]
        self._pretrained = (networks, first)
        try:
            self.fit_supervised(windows, labels, returns)
        finally:
            self._pretrained = None

    def _given_scaler(self) -> FeatureScaler | None:
        return None if self._pretrained is None else self._pretrained[1]

    def _train(self, data: Prepared) -> nn.Module:
        self.histories = {}
        if self._pretrained is not None:
            bases = self._pretrained[0]
        else:
            bases = [self._train_base(name, data) for name in BASE_NAMES]
        ensemble = seeded(self.config.seed, lambda: self._ensemble(bases)).to(self.device)
        ensemble.freeze()
        self._train_heads(ensemble, data)
        return ensemble

    def _train_base(self, name: str, data: Prepared) -> nn.Module:
        network = seeded(self.config.seed, self._bases[name]).to(self.device)
        self.histories[name] = self._fit_network(network, data, name, 0)
        return network

    def _train_heads(self, ensemble: EnsembleModel, data: Prepared) -> None:
        stacked = predict_chunks(_Bases(ensemble), data.x_val, self.config.trainer.eval_batch)
        stacked = stacked.reshape(data.x_val.shape[0], -1)
        half = self._half(data)
        heads = Prepared(
            stacked[:half],
            data.t_val[:half],
            stacked[half:],
            data.t_val[half:],
            data.y_val[half:],
            None if data.r_val is None else data.r_val[half:],
            data.loss,
            data.target,
            data.scale,
        )
        self.histories["heads"] = self._fit_network(_Heads(ensemble), heads, "heads", 0)

    @staticmethod
    def _half(data: Prepared) -> int:
        return int(data.x_val.shape[0]) // 2

    def _calibration_rows(self, data: Prepared) -> slice:
        return slice(self._half(data), data.x_val.shape[0])


class _Bases(nn.Module):
    """Stacked base outputs, flattened (B * 3,) for `predict_chunks`."""

    def __init__(self, ensemble: EnsembleModel) -> None:
        super().__init__()
        self.ensemble = ensemble

    def forward(self, x: Tensor) -> Tensor:
        return self.ensemble.base_outputs(x).reshape(-1)
