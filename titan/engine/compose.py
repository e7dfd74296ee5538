"""Composition: one engine, modes differ only in clock, feed and broker (DESIGN.md §1, §6)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import torch

from titan.clock import Clock, LiveClock, SimClock
from titan.config import ConfigError, TitanConfig
from titan.data.feeds import build_live_feed
from titan.data.store import CandleStore, SeriesId
from titan.data.timeframes import timeframe_ms
from titan.engine.checkpoint import Checkpointer
from titan.engine.engine import Engine
from titan.engine.ensemble import Ensemble
from titan.engine.feed import ReplayFeed
from titan.engine.history import TrainingHistory
from titan.engine.ledger import ABSENT, Ledger
from titan.engine.records import EngineParts, FeedFactory, StartHook
from titan.engine.retraining import NeuralRetraining
from titan.features import NUM_FEATURES, FeatureBuffers
from titan.fusion import TransformerFusion
from titan.models.neural.registry import NEURAL_NAMES
from titan.ops.secrets import CredentialsError, load_api_credentials
from titan.trading.broker import Broker
from titan.trading.guard import LiveTradingRefused, require_live_confirmation
from titan.trading.live_broker import CcxtBroker, make_live_broker
from titan.trading.reconcile import ReconcileResult, reconcile_on_start
from titan.trading.sim_broker import SimBroker
from titan.trading.sizing import target_fraction
from titan.trading.trader import Trader
from titan.training.fitting import ModelSpec

log = structlog.get_logger(__name__)
HealthProvider = Callable[[], Mapping[str, Any]]


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
            store,
            series,
            start_after=start_after,
            start=start,
            end=end,
            speed=config.feed.speed,
            features=config.feed.precompute_features,
        )

    return make


def _feed_and_clock(config: TitanConfig) -> tuple[FeedFactory, Clock, HealthProvider | None]:
    if config.feed.kind == "replay":
        return replay_feed(config), SimClock(), None
    clock = LiveClock()
    try:
        factory = build_live_feed(
            config.feed.live,
            config.feed.kind,
            config.data.exchange,
            config.data.symbols,
            config.data.timeframe,
            clock,
            CandleStore(config.data.store),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return factory, clock, factory.health.snapshot


def _broker(config: TitanConfig, confirm_live: bool) -> Broker:
    """Simulated fills unless mode = live, which needs the explicit confirmation as well."""
    trading = config.trading
    if config.mode != "live":
        return SimBroker(fee_bps=trading.fee_bps, slippage_bps=trading.slippage_bps)
    try:
        require_live_confirmation(config.mode, confirm_live, os.environ)
        credentials = load_api_credentials(os.environ, config.live.secrets_file)
    except (LiveTradingRefused, CredentialsError) as exc:
        raise ConfigError(str(exc)) from None
    return make_live_broker(
        config.live, config.data.symbols, credentials, max_order_notional=trading.max_order_notional
    )


def _reconcile_hook(parts: EngineParts, broker: CcxtBroker) -> StartHook:
    """Live start-up: match the exchange's open orders and balances with the ledger.

    The broker journals the orders it submits in the ledger, so Titan's own orders are
    those with fills and those that may still rest (unfilled limit orders included)."""
    broker.journal = parts.ledger

    async def reconcile() -> None:
        known = set(parts.ledger.frame("fills")["order_id"].to_list())
        known |= {str(row["order_id"]) for row in parts.ledger.orders(unfinished=True)}
        result = await reconcile_on_start(
            broker,
            parts.trader.portfolio,
            known,
            parts.config.live,
            prices=dict(parts.trader.marks),
            ts=parts.clock.now_ms(),
        )
        _mark_absent_orders(parts.ledger, result)
        log.info("reconciled", result=str(result))

    return reconcile


def _mark_absent_orders(ledger: Ledger, result: ReconcileResult) -> None:
    """Journalled orders that may still rest but are not open on the exchange at start can
    no longer rest (filled, cancelled, or never placed): stop counting them as Titan's."""
    resting = {order.client_id for order in result.resumed}
    for row in ledger.orders(unfinished=True):
        if row["client_id"] not in resting:
            ledger.update_order(str(row["client_id"]), ABSENT)


def build_engine(config: TitanConfig, confirm_live: bool = False) -> Engine:
    """The engine for `config`: the same object for backtest, paper and live."""
    torch.set_num_threads(config.runtime.threads)
    feed, clock, health = _feed_and_clock(config)
    broker = _broker(config, confirm_live)
    spec = ModelSpec(config.training.neural, config.models)
    models = [spec.build(name) for name in config.models.enabled]
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
        trader=Trader(config.trading, broker, interval_ms=step),
        ledger=Ledger(state_dir / "ledger.db"),
        checkpointer=Checkpointer(state_dir / "checkpoints", config.engine.keep_checkpoints),
        feed_health=health,
    )
    if isinstance(broker, CcxtBroker):
        parts.on_start = _reconcile_hook(parts, broker)
    if any(name in NEURAL_NAMES for name in config.models.enabled):
        background = isinstance(clock, LiveClock)
        parts.retraining = NeuralRetraining(config, models, step, background)
    return Engine(parts, max_batch=1 if isinstance(clock, LiveClock) else config.engine.max_batch)
