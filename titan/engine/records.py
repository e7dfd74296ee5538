"""The engine's working records: queued decisions and outcomes, and the rows they write."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from titan.clock import Clock
from titan.config import TitanConfig
from titan.engine.checkpoint import Checkpointer
from titan.engine.ensemble import Ensemble, Inputs
from titan.engine.feed import FeatureRow, Interval
from titan.engine.history import TrainingHistory
from titan.engine.ledger import EquityRow, Ledger, Outcome, Prediction
from titan.engine.retraining import NeuralRetraining
from titan.features import FeatureBuffers
from titan.fusion import TransformerFusion
from titan.trading.trader import Trader
from titan.trading.types import Fill

FeedFactory = Callable[[int | None], AsyncIterable[Interval]]
StartHook = Callable[[], Awaitable[None]]


@dataclass
class PendingEntry:
    """A prediction waiting for its horizon; `id`/`inputs` are set once it is evaluated."""

    symbol: str
    ts: int
    target_ts: int
    close: float
    id: int = -1
    inputs: Inputs | None = None


@dataclass
class DecisionJob:
    """One interval's decisions, queued: the warm symbols and either their model input
    windows (streamed features) or where their rows lie in a replay's feature tables."""

    ts: int
    prices: dict[str, float]
    symbols: list[str]
    windows: np.ndarray | None
    entries: list[PendingEntry]
    tradable: bool = True
    sources: list[FeatureRow] | None = None


@dataclass
class Resolution:
    entry: PendingEntry
    outcome: Outcome
    close: float


@dataclass
class Writes:
    """Ledger rows gathered during a flush, written in one transaction."""

    predictions: list[tuple[Prediction, PendingEntry]] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    fill_objects: list[Fill] = field(default_factory=list)
    equity: list[EquityRow] = field(default_factory=list)
    progress: dict[str, int] = field(default_factory=dict)


@dataclass
class EngineParts:
    config: TitanConfig
    clock: Clock
    feed: FeedFactory
    ensemble: Ensemble
    make_fusion: Callable[[], TransformerFusion]
    buffers: FeatureBuffers
    history: TrainingHistory
    trader: Trader
    ledger: Ledger
    checkpointer: Checkpointer
    on_start: StartHook | None = None  # after restore, before the first interval (live: reconcile)
    feed_health: Callable[[], Mapping[str, Any]] | None = None
    retraining: NeuralRetraining | None = None  # neural models (minutes to fit)


@dataclass
class RunSummary:
    intervals: int = 0
    decisions: int = 0
    resolved: int = 0
    fills: int = 0
    last_ts: int | None = None
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def outcome_of(close_then: float, close_now: float) -> Outcome:
    if close_now > close_then:
        return "UP"
    return "DOWN" if close_now < close_then else "TIE"
