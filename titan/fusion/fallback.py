"""Why the fusion falls back to the simple average, and logging each reason once.

Reasons (strings, stable for logs and reports):

- ``disabled``: ``fusion.enabled = false``;
- ``insufficient_samples``: fewer than ``min_samples`` resolved outcomes recorded so far;
- ``not_better_than_average``: (with ``require_beating_average``) the network's latest
  validation loss, on the newest held-out samples, is not below the simple average's on
  the same samples (or it has not been validated yet). Checked at every validation, so the
  fusion switches itself off while it does not help and back on when it does;
- ``wrong_model_count``: the call passed a different number of models than ``n_models``;
- ``all_models_missing``: every model's prob_up was NaN in every row of the call. A row
  without any model always gets 0.5 and all-zero attention; in a call where other rows
  reached the network, `fallback_reason` stays None (the event is still logged once).

The fallback value is the NaN-masked mean of the available models' prob_up
(`titan.fusion.inputs.simple_average`): a missing model is skipped, never counted as 0.5.
"""

from __future__ import annotations

from typing import Literal

import structlog

FallbackReason = Literal[
    "disabled",
    "insufficient_samples",
    "not_better_than_average",
    "wrong_model_count",
    "all_models_missing",
]


class ReasonLog:
    """Logs `fusion_fallback` the first time each reason occurs (per fusion object)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def note(self, reason: FallbackReason, **fields: object) -> None:
        if reason not in self._seen:
            self._seen.add(reason)
            structlog.get_logger(__name__).warning("fusion_fallback", reason=reason, **fields)

    def note_sample_rejected(self, expected: int, got: int) -> None:
        if "rejected" not in self._seen:
            self._seen.add("rejected")
            structlog.get_logger(__name__).warning(
                "fusion_sample_rejected", reason="wrong_model_count", expected=expected, got=got
            )
