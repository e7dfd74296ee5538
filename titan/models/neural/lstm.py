"""LSTM base learner (lstm-cnn-attention-ensemble.md §1) and a bagged LSTMEnsemble.

``(B, 30, 40) -> 2-layer bidirectional LSTM(hidden 128) -> last timestep (B, 256) ->
Linear(256->128) + ReLU + BatchNorm + Dropout(0.2) -> Linear(128->1)``: 602,625
parameters at these settings, exactly the document's figure (the LSTM holds 569,344 of
them; no input embedding: the document marks it optional and its count excludes it).

Inference (eval mode) takes an exact shortcut: only the last timestep of the top layer
is read, and the top layer's *backward* direction has seen a single input there, so it
is one LSTM step from a zero state instead of 30. Same result (to float rounding) as
the full `nn.LSTM`, about a third less work; training uses the full module.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from titan.models.neural.layers import count_parameters, dense_block, seeded


class LSTMModel(nn.Module):
    def __init__(
        self,
        input_size: int = 40,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.2,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.directions = 2 if bidirectional else 1
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        width = hidden_size * self.directions
        self.fc1 = dense_block(width, hidden_size, dropout)
        self.fc2 = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, F) -> (B, 1)."""
        last = self._last_step(x) if not self.training else self.lstm(x)[0][:, -1]
        return self.fc2(self.fc1(last))  # type: ignore[no-any-return]

    def get_hidden_states(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(all outputs (B, T, D*H), final h_n (L*D, B, H), final c_n (L*D, B, H))."""
        output, (h_n, c_n) = self.lstm(x)
        return output, h_n, c_n

    def freeze_layers(self, num_layers: int) -> None:
        """Stop gradients into the first `num_layers` LSTM layers (both directions)."""
        for name, parameter in self.lstm.named_parameters():
            layer = int(name.split("_l")[1].split("_")[0])
            parameter.requires_grad_(layer >= num_layers)

    def count_parameters(self) -> int:
        return count_parameters(self)

    def _weights(self, layer: int, reverse: bool) -> list[Tensor]:
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return [getattr(self.lstm, name + suffix) for name in names]

    def _run(self, x: Tensor, layer: int, bidirectional: bool) -> Tensor:
        params = self._weights(layer, False)
        if bidirectional:
            params += self._weights(layer, True)
        state = x.new_zeros(2 if bidirectional else 1, x.shape[0], self.hidden_size)
        return torch.lstm(x, (state, state), params, True, 1, 0.0, False, bidirectional, True)[0]

    def _last_step(self, x: Tensor) -> Tensor:
        """Top layer's output at the last timestep, computing only what it reads."""
        bidirectional = self.directions == 2
        for layer in range(self.num_layers - 1):
            x = self._run(x, layer, bidirectional)
        top = self.num_layers - 1
        forward = self._run(x, top, False)[:, -1]
        if not bidirectional:
            return forward
        w_ih, _, b_ih, b_hh = self._weights(top, True)
        gates = torch.addmm(b_ih + b_hh, x[:, -1], w_ih.t())  # zero state: no W_hh term
        i, _, g, o = gates.chunk(4, dim=1)  # forget gate multiplies a zero cell
        cell = torch.sigmoid(i) * torch.tanh(g)
        return torch.cat([forward, torch.sigmoid(o) * torch.tanh(cell)], dim=1)


class LSTMEnsemble(nn.Module):
    """`members` LSTMModels from different seeds, averaged (bagging over initialisations)."""

    def __init__(self, members: int = 3, seed: int = 0, **kwargs: object) -> None:
        super().__init__()
        self.members = nn.ModuleList(
            seeded(seed + k, lambda: LSTMModel(**kwargs))  # type: ignore[arg-type]
            for k in range(members)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)

    def count_parameters(self) -> int:
        return count_parameters(self)


def create_lstm_model(
    input_size: int = 40,
    hidden_size: int = 128,
    num_layers: int = 2,
    dropout: float = 0.2,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> LSTMModel:
    """The document's factory: a seeded LSTMModel on `device`."""
    model = seeded(seed, lambda: LSTMModel(input_size, hidden_size, num_layers, dropout))
    return model.to(device)
