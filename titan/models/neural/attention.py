"""Attention base learner (lstm-cnn-attention-ensemble.md §3).

``(B, 30, 40) -> Linear(40->128) embedding + positional encoding (1 x 30 x 128) -> 2 x
TransformerBlock [8-head self-attention, residual, LayerNorm, FFN 128->512->128,
residual, LayerNorm] -> global average pooling over time -> Linear(128->64) + ReLU +
BN + Dropout -> Linear(64->1)``.

Parameter count: 414,081 with the *learned* positional table the document's diagram
and the issue name, 410,241 with a *fixed* (sinusoidal, non-trainable) table. The
document's 410,241 is exactly 414,081 - 3,840 = 30 x 128: its total leaves the
positional table out, which is what a table kept as a plain tensor (or buffer) instead
of an ``nn.Parameter`` gives -- a "learned" encoding that is never learned. The FFN
width 512 = 4 x 128 is the only width that reproduces the count (no other integer
does with the table counted). `positional="fixed"` reproduces the document's figure.

Q, K and V are one fused Linear(128 -> 384) (same parameters as three 128 -> 128
projections, one matrix multiply); heads are 128 / 8 = 16 wide; scores are
``Q K^T / sqrt(16)``. `get_attention_weights` returns the softmax weights averaged over
heads, per block.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from titan.models.neural.layers import count_parameters, dense_block, seeded

Positional = Literal["learned", "fixed"]


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int = 128, heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """(B, T, D) -> ((B, T, D), head-averaged weights (B, T, T) or None).

        `mask`: boolean (T, T) or (B, 1, T, T), True = may attend."""
        batch, steps, _ = x.shape
        q, k, v = self.qkv(x).view(batch, steps, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        p = self.dropout if self.training else 0.0
        if need_weights:
            context, weights = _attend(q, k, v, mask, p)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            weights = None
        return self.out(context.transpose(1, 2).reshape(batch, steps, self.dim)), weights

    def get_attention_weights(self, x: Tensor) -> Tensor:
        return self.forward(x, need_weights=True)[1]  # type: ignore[return-value]


def _attend(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, p: float
) -> tuple[Tensor, Tensor]:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return F.dropout(weights, p) @ v, weights.mean(dim=1)


class TransformerBlock(nn.Module):
    """Self-attention + residual + LayerNorm, feed-forward + residual + LayerNorm."""

    def __init__(self, dim: int = 128, heads: int = 8, ffn: int = 512, dropout: float = 0.1):
        super().__init__()
        self.attention = MultiHeadAttention(dim, heads, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, dim)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        attended, weights = self.attention(x, mask, need_weights)
        x = self.norm1(x + self.drop(attended))
        return self.norm2(x + self.drop(self.ffn(x))), weights


class AttentionModel(nn.Module):
    def __init__(
        self,
        input_size: int = 40,
        sequence_length: int = 30,
        dim: int = 128,
        heads: int = 8,
        blocks: int = 2,
        ffn: int = 512,
        fc: int = 64,
        dropout: float = 0.2,
        positional: Positional = "learned",
    ) -> None:
        super().__init__()
        self.embedding = nn.Linear(input_size, dim)
        table = (
            torch.randn(1, sequence_length, dim) * 0.02
            if positional == "learned"
            else sinusoidal(sequence_length, dim)
        )
        if positional == "learned":
            self.positional = nn.Parameter(table)
        else:
            self.register_buffer("positional", table)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, ffn, dropout) for _ in range(blocks)
        )
        self.head = nn.Sequential(dense_block(dim, fc, dropout), nn.Linear(fc, 1))

    def encode(self, x: Tensor, need_weights: bool = False) -> tuple[Tensor, list[Tensor]]:
        """(B, T, F) -> pooled (B, D) and each block's head-averaged weights (if asked)."""
        h = self.drop(self.embedding(x) + self.positional[:, : x.shape[1]])
        weights = []
        for block in self.blocks:
            h, w = block(h, None, need_weights)
            if w is not None:
                weights.append(w)
        return h.mean(dim=1), weights

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, F) -> (B, 1)."""
        return self.head(self.encode(x)[0])  # type: ignore[no-any-return]

    def get_attention_weights(self, x: Tensor) -> Tensor:
        """(blocks, B, T, T): each block's self-attention weights, averaged over heads."""
        return torch.stack(self.encode(x, need_weights=True)[1])

    def count_parameters(self) -> int:
        return count_parameters(self)


def sinusoidal(steps: int, dim: int) -> Tensor:
    """The fixed sine/cosine positional table (1, steps, dim)."""
    position = torch.arange(steps, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10_000.0) / dim))
    table = torch.zeros(steps, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : dim // 2]
    return table[None]


def create_attention_model(
    input_size: int = 40,
    hidden_size: int = 128,
    device: str | torch.device = "cpu",
    seed: int = 0,
    positional: Positional = "learned",
) -> AttentionModel:
    """The document's factory: a seeded AttentionModel on `device`."""
    return seeded(
        seed, lambda: AttentionModel(input_size, dim=hidden_size, positional=positional)
    ).to(device)
