"""`SampleBuffer`: the FIFO of resolved samples, with a chronological validation split.

One preallocated ring of `capacity` samples (raw token features, raw context, label),
oldest first. The newest ``floor(size * val_split)`` samples are the validation set; the
older ones are the training set. Mini-batches are drawn only from the training set, so a
sample is validated on before it can ever be trained on, and it joins the training set
only once newer samples have pushed it out of the validation window (walk-forward order,
never shuffled across the boundary). When full, the oldest sample is dropped.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from titan.fusion.inputs import F32


class SampleBuffer:
    def __init__(
        self,
        capacity: int,
        n_models: int,
        n_token: int,
        n_context: int,
        val_split: float,
        device: torch.device,
    ) -> None:
        self.capacity = capacity
        self.val_split = val_split
        self.device = device
        self.tokens = torch.zeros(capacity, n_models, n_token, device=device)
        self.context = torch.zeros(capacity, n_context, device=device)
        self.labels = torch.zeros(capacity, device=device)
        self.total = 0  # samples ever appended; slot of sample i is i % capacity

    @property
    def size(self) -> int:
        return min(self.total, self.capacity)

    @property
    def n_val(self) -> int:
        return int(self.size * self.val_split)

    @property
    def n_train(self) -> int:
        return self.size - self.n_val

    def append(self, tokens: F32, context: F32, labels: F32) -> None:
        """Append k samples in order: tokens (k, M, F), context (k, C), labels (k,) in {0, 1}."""
        count = len(labels)
        keep = min(count, self.capacity)  # older ones would be overwritten anyway
        start = self.total + count - keep
        data = (tokens[-keep:], context[-keep:], labels[-keep:])
        for lo, hi, offset in self._spans(start, keep):
            for store, values in zip((self.tokens, self.context, self.labels), data, strict=True):
                store[lo:hi] = torch.from_numpy(
                    np.ascontiguousarray(values[offset : offset + hi - lo])
                )
        self.total += count

    def _spans(self, start: int, count: int) -> list[tuple[int, int, int]]:
        """Ring slots [lo, hi) for `count` samples from sample index `start`, with data offsets."""
        lo = start % self.capacity
        first = min(count, self.capacity - lo)
        spans = [(lo, lo + first, 0)]
        if first < count:
            spans.append((0, count - first, first))
        return spans

    @property
    def _oldest(self) -> int:
        """Ring slot of the oldest sample held."""
        return (self.total - self.size) % self.capacity

    def slots(self, positions: Tensor) -> Tensor:
        """Chronological positions (0 = oldest held) -> ring slots."""
        return (positions + self._oldest) % self.capacity

    def random_train_slots(self, count: int, generator: torch.Generator) -> Tensor:
        """`count` ring slots drawn uniformly, with replacement, from the training region.

        Draws the positions already offset by the oldest slot: the same draws as
        ``slots(torch.randint(0, n_train, ...))``, one op fewer.
        """
        oldest = self._oldest
        drawn = torch.randint(
            oldest, oldest + self.n_train, (count,), generator=generator, device=self.device
        )
        return drawn.remainder_(self.capacity)

    def gather(self, slots: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Tokens, context and labels at `slots` (`index_select`: cheaper than indexing)."""
        return (
            self.tokens.index_select(0, slots),
            self.context.index_select(0, slots),
            self.labels.index_select(0, slots),
        )

    def train_region(self) -> tuple[Tensor, Tensor]:
        """Raw tokens and context of the whole training region (for refitting the scaler)."""
        slots = self.slots(torch.arange(self.n_train, device=self.device))
        return self.tokens[slots], self.context[slots]

    def val_slots(self) -> Tensor:
        return self.slots(torch.arange(self.n_train, self.size, device=self.device))

    def newest_slots(self, count: int) -> Tensor:
        count = min(count, self.size)
        return self.slots(torch.arange(self.size - count, self.size, device=self.device))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.tokens, self.context, self.labels))

    def state(self) -> dict[str, Tensor]:
        return {"tokens": self.tokens, "context": self.context, "labels": self.labels}

    def load(self, state: dict[str, Tensor], total: int) -> None:
        """Restore the ring's contents and the count of samples ever appended."""
        for name, store in self.state().items():
            store.copy_(state[name])
        self.total = total
