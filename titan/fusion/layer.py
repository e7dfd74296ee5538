"""`TransformerFusionLayer`: pre-LayerNorm multi-head self-attention + feed-forward block.

Written with plain tensor ops rather than `nn.MultiheadAttention`: the caller needs the
attention weights anyway, and at these sizes (a handful of tokens, width 32) the module's
argument checks and reshapes cost more than the arithmetic. Sub-layers are applied with
`F.linear`/`F.layer_norm` to skip module-call overhead. The feed-forward activation is
ReLU: PyTorch's vectorised GELU/SiLU round tail elements differently, which would break the
batch == one-by-one guarantee. Dropout draws from an explicit `torch.Generator`, so a
checkpoint carries its state and training after a reload follows the same trajectory.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dropout(x: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Inverted dropout with an explicit generator; identity when `generator` is None."""
    if generator is None or p <= 0.0:
        return x
    # uniform draws + threshold: half the cost of bernoulli_ with a CPU generator
    uniform = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x * uniform.ge_(p).mul_(1.0 / (1.0 - p))


def linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """`layer(x)` without the module-call overhead."""
    return F.linear(x, layer.weight, layer.bias)


def layer_norm(layer: nn.LayerNorm, x: Tensor) -> Tensor:
    """`layer(x)` without the module-call overhead."""
    return F.layer_norm(x, layer.normalized_shape, layer.weight, layer.bias, layer.eps)


class TransformerFusionLayer(nn.Module):
    """h -> h + Drop(Attn(LN(h))) -> h + Drop(FFN(LN(h))), with a key mask.

    `forward` updates every token; `forward_first` only the first (decision) token, which
    is all the last layer needs and gives that token the same value.
    """

    def __init__(self, width: int, num_heads: int, ffn_dim: int, dropout_p: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = width // num_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.dropout_p = dropout_p
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ffn_in = nn.Linear(width, ffn_dim)
        self.ffn_out = nn.Linear(ffn_dim, width)

    def forward(
        self, h: Tensor, key_bias: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """h (B, T, W), key_bias (B, T) -> new h (B, T, W), attention (B, heads, T, T).

        key_bias is 0 for a visible token and -inf for a masked one (never the first).
        """
        batch, n_tok, width = h.shape
        q, k, v = self._project(layer_norm(self.norm1, h))
        scores = (q * self.scale) @ k.transpose(-1, -2)
        attn = torch.softmax(scores + key_bias[:, None, None, :], dim=-1)
        context = (attn @ v).transpose(1, 2).reshape(batch, n_tok, width)
        return self._finish(h, context, generator), attn

    def forward_first(
        self, h: Tensor, key_bias: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """h (B, T, W) -> the first token's new state (B, W) and its attention (B, T, heads).

        Only the decision token's query is computed, and the attention is multiply-and-sum
        in (B, T, heads, head_dim) layout, where the reduced dimensions are contiguous:
        cheaper than matmuls over a handful of tokens, and exact whatever the batch size.
        """
        batch, _, width = h.shape
        attn, v = self.first_attention(h, key_bias)
        context = (attn.unsqueeze(-1) * v).sum(dim=1).reshape(batch, width)
        return self._finish(h[:, 0], context, generator), attn

    def first_attention(self, h: Tensor, key_bias: Tensor) -> tuple[Tensor, Tensor]:
        """The first token's attention (B, T, heads) and the values (B, T, heads, head_dim):
        the part of `forward_first` before the attention is applied."""
        batch, n_tok, width = h.shape
        a = layer_norm(self.norm1, h)
        # Row blocks query | key, value. `split`/`unbind` (not slicing) so that backward
        # joins the pieces' gradients in one op instead of zero-filling a copy per slice.
        weight_q, weight_kv = self.qkv.weight.split_with_sizes([width, 2 * width])
        bias_q, bias_kv = self.qkv.bias.split_with_sizes([width, 2 * width])
        q = F.linear(a[:, 0], weight_q, bias_q) * self.scale
        kv = F.linear(a, weight_kv, bias_kv).view(batch, n_tok, 2, self.num_heads, self.head_dim)
        k, v = kv.unbind(2)  # each (B, T, heads, head_dim)
        scores = (q.view(batch, 1, self.num_heads, self.head_dim) * k).sum(dim=-1)
        return torch.softmax(scores + key_bias[:, :, None], dim=1), v

    def _project(self, a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, T, W) -> queries, keys and values, each (B, heads, T, head_dim)."""
        batch, n_tok, _ = a.shape
        qkv = linear(self.qkv, a).view(batch, n_tok, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def _finish(self, h: Tensor, context: Tensor, generator: torch.Generator | None) -> Tensor:
        """Residual attention output, then the residual feed-forward block."""
        h = h + dropout(linear(self.out, context), self.dropout_p, generator)
        hidden = F.relu(linear(self.ffn_in, layer_norm(self.norm2, h)))
        return h + dropout(linear(self.ffn_out, hidden), self.dropout_p, generator)
