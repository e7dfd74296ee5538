"""EnsembleModel (lstm-cnn-attention-ensemble.md §4) and StackedEnsemble.

EnsembleModel: the LSTM, CNN and attention learners (frozen after pre-training: no
gradients, BatchNorm/Dropout kept in eval mode) -> stacked predictions (B, 3) ->
weight predictor ``Linear(3->64) + ReLU + Dropout + Linear(64->3) + Softmax`` (451
parameters) and meta-learner ``Linear(3->64) + ReLU + BN + Dropout, Linear(64->32) +
ReLU + BN + Dropout, Linear(32->1)`` (2,561) -> ``final = (sum_i w_i p_i + meta) / 2``.
Total 602,625 + 130,081 + 410,241 + 3,012 = 1,145,959 with the document's attention
reading (fixed positional table), 1,149,799 with a learned one (see attention.py).

The document's ``forward(x, training)`` flag is the module's own train/eval mode here.
Because the base learners are frozen, their outputs can be computed once and the two
heads trained on them alone (`combine`), which is how `titan.models.neural` fits it.

StackedEnsemble: any base learners, a meta-learner on their stacked predictions only
(no weight predictor): ``Linear(k->32) + ReLU + BN + Dropout + Linear(32->1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from titan.models.neural.layers import count_parameters, dense_block

BASE_NAMES = ("lstm", "cnn", "attention")
Details = dict[str, Tensor]


class _Frozen(nn.Module):
    """Holds base learners; `freeze` stops their gradients and pins them to eval mode."""

    bases: nn.ModuleList
    frozen: bool = False

    def freeze(self) -> None:
        self.frozen = True
        for parameter in self.bases.parameters():
            parameter.requires_grad_(False)
        self.bases.eval()

    def train(self, mode: bool = True) -> _Frozen:
        super().train(mode)
        if self.frozen:
            self.bases.eval()
        return self

    def base_outputs(self, x: Tensor) -> Tensor:
        """(B, T, F) -> (B, k) stacked base predictions."""
        return torch.cat([base(x) for base in self.bases], dim=1)


class EnsembleModel(_Frozen):
    def __init__(
        self,
        lstm: nn.Module,
        cnn: nn.Module,
        attention: nn.Module,
        hidden: int = 64,
        meta_hidden: tuple[int, int] = (64, 32),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.bases = nn.ModuleList([lstm, cnn, attention])
        k = len(self.bases)
        self.weight_predictor = nn.Sequential(
            nn.Linear(k, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, k),
            nn.Softmax(dim=1),
        )
        self.meta = nn.Sequential(
            dense_block(k, meta_hidden[0], dropout),
            dense_block(meta_hidden[0], meta_hidden[1], dropout),
            nn.Linear(meta_hidden[1], 1),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Details]:
        """(B, T, F) -> final prediction (B, 1) and every intermediate output."""
        return self.combine(self.base_outputs(x))

    def combine(self, base: Tensor) -> tuple[Tensor, Details]:
        """Stacked base predictions (B, 3) -> final (B, 1) and details."""
        weights = self.weight_predictor(base)
        weighted = (weights * base).sum(dim=1, keepdim=True)
        meta = self.meta(base)
        details = {name: base[:, i : i + 1] for i, name in enumerate(BASE_NAMES)}
        details.update(weights=weights, ensemble=weighted, meta=meta)
        return (weighted + meta) / 2.0, details

    def get_confidence_weights(self, x: Tensor) -> dict[str, Tensor]:
        """The weight predictor's softmax weight (B,) for each base learner."""
        weights = self.weight_predictor(self.base_outputs(x))
        return {name: weights[:, i] for i, name in enumerate(BASE_NAMES)}

    def get_base_predictions(self, x: Tensor) -> dict[str, Tensor]:
        """Each base learner's raw prediction (B, 1)."""
        base = self.base_outputs(x)
        return {name: base[:, i : i + 1] for i, name in enumerate(BASE_NAMES)}

    def head_parameter_count(self) -> int:
        return count_parameters(self.weight_predictor) + count_parameters(self.meta)

    def count_parameters(self) -> int:
        return count_parameters(self)


class StackedEnsemble(_Frozen):
    def __init__(self, bases: Sequence[nn.Module], hidden: int = 32, dropout: float = 0.2):
        super().__init__()
        self.bases = nn.ModuleList(bases)
        self.meta = nn.Sequential(
            dense_block(len(self.bases), hidden, dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Details]:
        return self.combine(self.base_outputs(x))

    def combine(self, base: Tensor) -> tuple[Tensor, Details]:
        return self.meta(base), {f"base_{i}": base[:, i : i + 1] for i in range(base.shape[1])}

    def count_parameters(self) -> int:
        return count_parameters(self)


def create_ensemble_model(
    lstm: nn.Module,
    cnn: nn.Module,
    attention: nn.Module,
    device: str | torch.device = "cpu",
    freeze: bool = True,
) -> EnsembleModel:
    """The document's factory: an EnsembleModel over pre-trained (frozen) base learners."""
    model = EnsembleModel(lstm, cnn, attention).to(device)
    if freeze:
        model.freeze()
    return model
