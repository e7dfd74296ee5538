"""CNN base learner (lstm-cnn-attention-ensemble.md §2) and the MultiScaleCNN variant.

``(B, 30, 40) -> transpose (B, 40, 30) -> 3 x [Conv1d('same' padding) + BatchNorm + ReLU +
MaxPool(2)] with 32/64/128 filters and kernels 3/5/7 (lengths 30 -> 15 -> 7 -> 3) ->
flatten (128 x 3 = 384) -> Linear(384->128) + ReLU + BN + Dropout -> Linear(128->64) +
ReLU + BN + Dropout -> Linear(64->1)``: 130,081 parameters, the document's figure. The
document leaves ``fc_input`` open; 'same' padding with pooling by 2 after every block is
the reading that gives 130,081 (fc_input = 384).

MultiScaleCNN: three branches over the same input, fused by concatenation --
shallow (one block, kernel 3: local patterns), medium (two blocks, kernel 5) and deep
(three blocks, kernel 7: long range); each ends in global average pooling; the fused
vector goes through the same FC head (-> 64 -> 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from titan.models.neural.layers import count_parameters, dense_block, seeded


def conv_block(n_in: int, n_out: int, kernel: int, pool: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv1d(n_in, n_out, kernel, padding=kernel // 2),
        nn.BatchNorm1d(n_out),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool1d(2))
    return nn.Sequential(*layers)


class CNNModel(nn.Module):
    def __init__(
        self,
        input_size: int = 40,
        sequence_length: int = 30,
        filters: Sequence[int] = (32, 64, 128),
        kernels: Sequence[int] = (3, 5, 7),
        fc: tuple[int, int] = (128, 64),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        widths = [input_size, *filters]
        self.features = nn.Sequential(
            *(conv_block(widths[i], widths[i + 1], k) for i, k in enumerate(kernels))
        )
        self.fc_input = filters[-1] * (sequence_length >> len(filters))
        self.head = nn.Sequential(
            dense_block(self.fc_input, fc[0], dropout),
            dense_block(fc[0], fc[1], dropout),
            nn.Linear(fc[1], 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, F) -> (B, 1)."""
        return self.head(self.extract_features(x).flatten(1))  # type: ignore[no-any-return]

    def extract_features(self, x: Tensor) -> Tensor:
        """Convolutional feature maps (B, filters[-1], T / 2^blocks)."""
        return self.features(x.transpose(1, 2))  # type: ignore[no-any-return]

    def count_parameters(self) -> int:
        return count_parameters(self)


class MultiScaleCNN(nn.Module):
    def __init__(
        self,
        input_size: int = 40,
        filters: Sequence[int] = (32, 64, 128),
        fc: tuple[int, int] = (128, 64),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.shallow = self._branch(input_size, filters[:1], 3)
        self.medium = self._branch(input_size, filters[:2], 5)
        self.deep = self._branch(input_size, filters[:3], 7)
        fused = filters[0] + filters[min(1, len(filters) - 1)] + filters[min(2, len(filters) - 1)]
        self.head = nn.Sequential(
            dense_block(fused, fc[0], dropout),
            dense_block(fc[0], fc[1], dropout),
            nn.Linear(fc[1], 1),
        )

    @staticmethod
    def _branch(n_in: int, filters: Sequence[int], kernel: int) -> nn.Sequential:
        widths = [n_in, *filters]
        blocks = [
            conv_block(widths[i], widths[i + 1], kernel, pool=i + 1 < len(filters))
            for i in range(len(filters))
        ]
        return nn.Sequential(*blocks, nn.AdaptiveAvgPool1d(1), nn.Flatten())

    def forward(self, x: Tensor) -> Tensor:
        z = x.transpose(1, 2)
        fused = torch.cat([self.shallow(z), self.medium(z), self.deep(z)], dim=1)
        return self.head(fused)  # type: ignore[no-any-return]

    def count_parameters(self) -> int:
        return count_parameters(self)


def create_cnn_model(
    input_size: int = 40,
    sequence_length: int = 30,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> CNNModel:
    """The document's factory: a seeded CNNModel on `device`."""
    return seeded(seed, lambda: CNNModel(input_size, sequence_length)).to(device)
