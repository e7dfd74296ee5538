"""Composition: one engine, modes differ only in clock, feed and broker (DESIGN.md §1, §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import torch

from titan.clock import Clock, LiveClock, SimClock
from titan.config import ConfigError, TitanConfig
from titan.data.store import CandleStore, SeriesId
from titan.data.timeframes import timeframe_ms
from titan.engine.checkpoint import Checkpointer
from titan.engine.engine import Engine
from titan.engine.ensemble import Ensemble
from titan.engine.feed import ReplayFeed
from titan.engine.history import TrainingHistory
from titan.engine.ledger import Ledger
from titan.engine.records import EngineParts, FeedFactory
from titan.features import NUM_FEATURES, FeatureBuffers
from titan.fusion import TransformerFusion
from titan.models.registry import build_models
from titan.trading.sim_broker import SimBroker
from titan.trading.sizing import target_fraction
from titan.trading.trader import Trader


def parse_when(text: str | None) -> int | None:
    """ISO 8601 (UTC unless stated) -> epoch ms; None stays None."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def series_of(config: TitanConfig) -> list[SeriesId]:
    data = config.data
    return [SeriesId(data.exchange, symbol, data.timeframe) for symbol in data.symbols]


def replay_feed(config: TitanConfig) -> FeedFactory:
    store = CandleStore(config.data.store)
    series = series_of(config)
    missing = [store.path(s) for s in series if not store.exists(s)]
    if missing:
        raise ConfigError(f"no stored candles for {', '.join(map(str, missing))} (data.store)")
    start, end = parse_when(config.feed.start), parse_when(config.feed.end)

    def make(start_after: int | None) -> ReplayFeed:
        return ReplayFeed(
            store, series, start_after=start_after, start=start, end=end, speed=config.feed.speed
        )

    return make


def _feed_and_clock(config: TitanConfig) -> tuple[FeedFactory, Clock]:
    if config.mode == "live":
        raise ConfigError("live trading is not available yet (it arrives with live ingestion)")
    if config.feed.kind != "replay":
        raise ConfigError(f"feed.kind = {config.feed.kind!r} is not available yet; use 'replay'")
    return replay_feed(config), SimClock()


def build_engine(config: TitanConfig) -> Engine:
    """The engine for `config`: same object for backtest, paper and (later) live."""
    torch.set_num_threads(config.runtime.threads)
    feed, clock = _feed_and_clock(config)
    models = build_models(config.models)
    make_fusion = partial(
        TransformerFusion,
        config.fusion,
        len(models),
        context_features=config.engine.context_features,
    )
    ensemble = Ensemble(
        models,
        make_fusion(),
        partial(target_fraction, config=config.trading),
        config.models.horizon,
    )
    step = timeframe_ms(config.data.timeframe)
    state_dir = Path(config.runtime.state_dir)
    capacity = config.models.train_window + config.models.horizon + ensemble.lookback
    parts = EngineParts(
        config=config,
        clock=clock,
        feed=feed,
        ensemble=ensemble,
        make_fusion=make_fusion,
        buffers=FeatureBuffers(config.features),
        history=TrainingHistory(capacity, NUM_FEATURES),
        trader=Trader(
            config.trading,
            SimBroker(fee_bps=config.trading.fee_bps, slippage_bps=config.trading.slippage_bps),
            interval_ms=step,
        ),
        ledger=Ledger(state_dir / "ledger.db"),
        checkpointer=Checkpointer(state_dir / "checkpoints", config.engine.keep_checkpoints),
    )
    live_clock = isinstance(clock, LiveClock)
    return Engine(parts, max_batch=1 if live_clock else config.engine.max_batch)
