"""`FusionNetwork`: tokens per model (+ a context token) -> P(up) logit and attention.

Sequence layout: ``[decision, context?, model_0 ... model_{M-1}]``. The decision token is
a learned vector; each model token is a shared projection of that model's standardised
inputs plus a learned per-model identity embedding (without it the models would be
interchangeable and attention could not prefer one); the context token projects the
standardised context values and their presence flags. Missing models are masked keys.
The output logit is the attention-weighted mean of the models' own logits (the decision
token's last-layer attention over the present models, so the attention weights are
literally how much each model counts) plus a correction from the decision token's final
state (LayerNorm and a linear head, initialised to zero). An untrained network therefore
answers with the models' (equally weighted) consensus, never with noise, and training
moves it away from that only as far as the outcomes justify: a departure from the
design document, whose plain head starts from a random guess (see `titan/fusion/__init__`).
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from titan.config.fusion import FusionConfig
from titan.fusion.layer import TransformerFusionLayer, dropout, layer_norm, linear

EMBED_INIT_STD = 0.02


def key_bias_array(present: npt.NDArray[np.bool_], n_fixed: int) -> npt.NDArray[np.float32]:
    """`FusionNetwork.key_bias` for a numpy (B, M) present mask: the same values, without
    torch's per-call cost (inference)."""
    bias = np.zeros((present.shape[0], n_fixed + present.shape[1]), dtype=np.float32)
    bias[:, n_fixed:] = np.where(present, np.float32(0.0), np.float32(-np.inf))
    return bias


class FusionNetwork(nn.Module):
    def __init__(self, config: FusionConfig, n_models: int, n_token: int, n_context: int):
        super().__init__()
        width = config.hidden_dim
        self.n_models = n_models
        self.n_fixed = 2 if n_context else 1  # decision (+ context) tokens before the models
        self.dropout_p = config.dropout
        self.token_proj = nn.Linear(n_token, width)
        self.model_embedding = nn.Parameter(torch.randn(n_models, width) * EMBED_INIT_STD)
        self.decision_token = nn.Parameter(torch.randn(1, 1, width) * EMBED_INIT_STD)
        self.context_proj = nn.Linear(2 * n_context, width) if n_context else None
        self.layers = nn.ModuleList(
            TransformerFusionLayer(width, config.num_heads, config.ffn_dim, config.dropout)
            for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        tokens: Tensor,
        present: Tensor,
        prior: Tensor,
        context: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """tokens (B, M, F), present (B, M) bool, prior (B, M) the models' raw logits (0 where
        missing), context (B, 2C) -> logits (B,), attention (B, M).

        Dropout is active iff `generator` is given. Attention is the decision token's
        last-layer attention over the model tokens, averaged over heads and renormalised to
        sum to 1 over the present models (the context token's share is left out).
        """
        return self.forward_masked(tokens, self.key_bias(present), prior, context, generator)

    def forward_masked(
        self,
        tokens: Tensor,
        key_bias: Tensor,
        prior: Tensor,
        context: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """`forward` with the key mask given as `key_bias` (B, T) (see `key_bias`)."""
        h, last = self._last_layer_input(tokens, key_bias, context, generator)
        decision, attn = last.forward_first(h, key_bias, generator)
        # Head as multiply-and-sum: a one-column matmul takes BLAS paths whose rounding
        # depends on the batch size.
        correction = (layer_norm(self.norm, decision) * self.head.weight.view(-1)).sum(dim=-1)
        weights = self._model_weights(attn)
        consensus = (weights * prior).sum(dim=-1)
        return consensus + correction + self.head.bias, weights

    def attention(self, tokens: Tensor, present: Tensor, context: Tensor | None) -> Tensor:
        """The attention `forward` returns without dropout (B, M), bit for bit, without the
        rest of the last layer and the head."""
        key_bias = self.key_bias(present)
        h, last = self._last_layer_input(tokens, key_bias, context, None)
        return self._model_weights(last.first_attention(h, key_bias)[0])

    def key_bias(self, present: Tensor) -> Tensor:
        """(B, M) present mask -> (B, T) additive attention bias: 0 to attend, -inf masked;
        the decision and context tokens are always visible."""
        return F.pad(torch.where(present, 0.0, -math.inf), (self.n_fixed, 0))

    def _last_layer_input(
        self,
        tokens: Tensor,
        key_bias: Tensor,
        context: Tensor | None,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, TransformerFusionLayer]:
        """The token states entering the last layer, and that layer."""
        h = dropout(self._embed(tokens, context), self.dropout_p, generator)
        *inner, last = self._blocks()
        for layer in inner:
            h, _ = layer(h, key_bias, generator)
        return h, last

    def _model_weights(self, attn: Tensor) -> Tensor:
        """Last-layer attention (B, T, heads) -> per-model weights (B, M), heads averaged,
        renormalised over the models."""
        weights = attn[:, self.n_fixed :].mean(dim=-1)
        return weights / weights.sum(dim=1, keepdim=True)

    def _blocks(self) -> list[TransformerFusionLayer]:
        return [cast(TransformerFusionLayer, layer) for layer in self.layers]

    def _embed(self, tokens: Tensor, context: Tensor | None) -> Tensor:
        parts = [self.decision_token.expand(tokens.shape[0], 1, -1)]
        if self.context_proj is not None:
            if context is None:
                raise ValueError("this network has a context token: pass the context")
            parts.append(linear(self.context_proj, context).unsqueeze(1))
        parts.append(linear(self.token_proj, tokens) + self.model_embedding)
        return torch.cat(parts, dim=1)

    def decayed_parameters(self) -> list[nn.Parameter]:
        """Weights that get L2 decay: linear weight matrices (not biases, norms, embeddings)."""
        return [p for name, p in self.named_parameters() if name.endswith("weight") and p.ndim == 2]

    def undecayed_parameters(self) -> list[nn.Parameter]:
        decayed = {id(p) for p in self.decayed_parameters()}
        return [p for p in self.parameters() if id(p) not in decayed]
