"""The engine: one code path for live, paper and backtest replay.

Per interval: closed candles -> feature buffers and training history -> matured
predictions resolved (outcomes queued for the fusion) -> walk-forward refits on
schedule -> one batched `Ensemble.decide` for every warm symbol -> trader -> ledger.

Decisions are queued and evaluated together at the next *barrier*: before anything
that changes what the models or the fusion would output (a fusion training step or
activation, a base-model refit), before a checkpoint or stored statistics, and after
`max_batch` intervals. Evaluating a queue of decisions in one batch therefore gives
exactly what evaluating each at its own interval gives (a test proves it); live runs
use `max_batch = 1`, so every decision is made and traded at its own candle. The KILL
file is checked at every barrier, before its queued decisions can trade.

A replay goes further, with the same result (the same test compares whole ledgers with
the live-like path): its feed hands each candle's feature row, computed in one batch
pass, and `Lookahead` runs the frozen base models over the feature tables once until
their next refit instead of once per barrier.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from titan.clock import SimClock
from titan.data.timeframes import timeframe_ms
from titan.engine.ensemble import Decision, Inputs
from titan.engine.events import Observers
from titan.engine.feed import FeatureRow, Interval
from titan.engine.ledger import EquityRow, Prediction
from titan.engine.lookahead import Lookahead, Request
from titan.engine.records import (
    DecisionJob,
    EngineParts,
    PendingEntry,
    Resolution,
    RunSummary,
    Writes,
    outcome_of,
)
from titan.engine.state import EngineState, state_reader, write_state
from titan.features import NUM_FEATURES
from titan.trading.types import Fill

log = structlog.get_logger(__name__)
FIRST_FIT_CHECK = 60  # intervals between checks for enough history to fit the models


class Engine:
    def __init__(self, parts: EngineParts, max_batch: int | None = None) -> None:
        self.parts = parts
        self.config = parts.config
        self.step_ms = timeframe_ms(parts.config.data.timeframe)
        self.horizon = parts.config.models.horizon
        # cadences read every interval, as plain attributes (pydantic reads cost more)
        self._stats_every = parts.config.engine.stats_every
        self._checkpoint_every = parts.config.engine.checkpoint_every
        self._log_every = parts.config.engine.log_every
        self._refit_every = parts.config.models.refit_every
        self.max_batch = max_batch or parts.config.engine.max_batch
        self.ledger = parts.ledger
        self.trader = parts.trader
        self.ensemble = parts.ensemble
        self.lookahead = Lookahead(parts.ensemble)  # replay: base-model outputs run ahead
        self._ops: list[DecisionJob | Resolution] = []
        self._jobs = 0
        self._updates_left = 0
        self._pending: dict[str, deque[PendingEntry]] = defaultdict(deque)
        self._stop = False
        self._stopped = asyncio.Event()
        self.last_ts: int | None = None
        self.summary = RunSummary()
        self.on_interval: Callable[[Interval], None] | None = None
        self._received = 0.0
        self.decision_latency_s = 0.0  # last flush: interval received -> ledger committed
        self.observers = Observers()
        self.trading_paused = False
        self.models_fitted = False
        self._checkpoint_requested = False
        self.kill_file = Path(parts.config.runtime.state_dir) / parts.config.engine.kill_file
        self._kill_path = str(self.kill_file)
        self._sim_clock = parts.clock if isinstance(parts.clock, SimClock) else None
        self._log: Any = log  # bound once per flush, with which levels it emits
        self._debug = self._info = True

    # ------------------------------------------------------------------ lifecycle

    def request_stop(self, *_args: object) -> None:
        """Finish the current interval, checkpoint and return from `run` (SIGTERM/SIGINT)."""
        self._stop = True
        self._stopped.set()

    def pause_trading(self) -> None:
        """Keep deciding and learning, place no orders (until `resume_trading`)."""
        self.trading_paused = True
        log.warning("trading_paused")

    def resume_trading(self) -> None:
        self.trading_paused = False
        log.warning("trading_resumed")

    async def kill(self, reason: str) -> None:
        """Kill switch: cancel open orders and stop trading (persists across restarts)."""
        if not self.trader.killed:
            self.trader.kill()
            cancelled = await self.trader.broker.cancel_all()
            log.error("kill_switch", reason=reason, cancelled_orders=cancelled)

    def request_checkpoint(self) -> None:
        self._checkpoint_requested = True

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    async def run(self) -> RunSummary:
        start_after = self.restore()
        await self.trader.broker.start()
        if self.parts.on_start is not None:
            await self.parts.on_start()
        self.observers.emit("on_status", "online")
        log.info(
            "engine_started",
            mode=self.config.mode,
            symbols=list(self.config.data.symbols),
            resume_after=start_after,
            max_batch=self.max_batch,
        )
        feed = self.parts.feed(start_after)
        gc.collect()
        gc.freeze()  # what exists now (models, tables, modules) lives all run: skip it in GC scans
        try:
            async for interval in self._until_stopped(feed):
                await self.process(interval)
        finally:
            gc.unfreeze()
            await _close(feed)
        await self.finish(ended=not self._stop)
        await self.trader.broker.close()
        if self.parts.retraining is not None:
            self.parts.retraining.close()
        return self.summary

    async def _until_stopped(self, feed: AsyncIterable[Interval]) -> AsyncIterator[Interval]:
        """The feed's intervals until a stop is requested. A replay is checked between
        intervals; a live feed's wait for the next candle is interrupted at once."""
        if self._sim_clock is not None:  # a replay
            async for interval in feed:
                yield interval
                if self._stop:
                    return
            return
        iterator = aiter(feed)
        while not self._stop:
            following = await self._next_or_stop(iterator)
            if following is None:
                return
            yield following

    async def _next_or_stop(self, iterator: AsyncIterator[Interval]) -> Interval | None:
        following = asyncio.ensure_future(anext(iterator))
        stopping = asyncio.ensure_future(self._stopped.wait())
        done, _ = await asyncio.wait({following, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if following not in done:
            following.cancel()  # and let the feed finish unwinding before it is closed
            await asyncio.gather(following, return_exceptions=True)
            return None
        try:
            return following.result()
        except StopAsyncIteration:
            return None

    async def finish(self, ended: bool) -> None:
        await self.flush()
        if ended and self.last_ts is not None and self.config.trading.flat_at_end:
            await self._flatten(self.last_ts)
        if self.last_ts is not None:
            self.checkpoint(self.last_ts)
        self.summary.finished = ended
        self.observers.emit("on_status", "stopped")
        log.info(
            "engine_stopped",
            reason="end_of_feed" if ended else "stop_requested",
            intervals=self.summary.intervals,
            last_ts=self.last_ts,
        )

    # ------------------------------------------------------------------ one interval

    async def process(self, interval: Interval) -> None:
        """One closed interval. Its decisions are made before the outcomes that resolve at
        this candle are learned (they train the fusion for the next interval), so training
        never delays a decision."""
        self._received = time.perf_counter()
        if self._sim_clock is not None:
            self._sim_clock.advance_to(interval.ts + self.step_ms)
        prices = self._ingest(interval)
        if self.parts.retraining is not None:
            await self._swap_retrained()
        if self._refit_due(interval.ts):
            await self._refit()
        self._queue_decision(interval, prices)
        await self._resolve(interval)
        if self._jobs >= self.max_batch:
            await self.flush()
        if self._due(interval.ts, self._stats_every):
            await self.flush()
            self._store_stats(interval.ts)
        if self._due(interval.ts, self._checkpoint_every) or self._checkpoint_requested:
            await self.flush()
            self.checkpoint(interval.ts)
            self._checkpoint_requested = False
        self.last_ts = interval.ts
        self.summary.intervals += 1
        self.summary.last_ts = interval.ts
        if self.on_interval is not None:
            self.on_interval(interval)

    def _due(self, ts: int, every: int) -> bool:
        return (ts // self.step_ms) % every == 0

    def _ingest(self, interval: Interval) -> dict[str, float]:
        """Feature rows (streamed, or precomputed by a replay) and training history."""
        buffers, history = self.parts.buffers, self.parts.history
        precomputed = interval.features
        prices = {}
        for i, candle in enumerate(interval.candles):
            if precomputed is None:
                c = candle
                row = buffers.update(c.symbol, c.open, c.high, c.low, c.close, c.volume)
            else:
                table, position = precomputed[i]
                row = table[position]
                buffers.append(candle.symbol, position, row)
            history.push(candle.symbol, candle.ts, row, candle.close)
            prices[candle.symbol] = candle.close
        return prices

    async def _resolve(self, interval: Interval) -> None:
        for candle in interval.candles:
            queue = self._pending.get(candle.symbol)
            while queue and queue[0].target_ts <= candle.ts:
                entry = queue.popleft()
                outcome = outcome_of(entry.close, candle.close)
                self._ops.append(Resolution(entry, outcome, candle.close))
                if outcome != "TIE":
                    self._updates_left -= 1
                    if self._updates_left <= 0:
                        await self.flush()  # this outcome may change the fusion's output

    def _refit_due(self, ts: int) -> bool:
        """Walk-forward refits every `refit_every` candles; the first fit as soon as the
        history holds enough labelled samples (checked hourly)."""
        if self._due(ts, self._refit_every):
            return True
        first_fit = not self.models_fitted and self._due(ts, FIRST_FIT_CHECK)
        return first_fit and self.parts.history.rows >= self.config.models.min_train

    async def _swap_retrained(self) -> None:
        """Swap in neural models a background retrain has finished (live runs)."""
        retraining = self.parts.retraining
        result = retraining.poll() if retraining is not None else None
        if retraining is not None and result is not None:
            await self.flush()  # decisions so far used the old models
            swapped = retraining.apply(result, self.parts.clock.now_ms())
            self.lookahead.clear()
            log.info("neural_models_swapped", models=swapped)

    async def _refit(self) -> None:
        await self.flush()
        retraining = self.parts.retraining
        neural = retraining.names if retraining is not None else ()
        used = self.ensemble.refit(self.parts.history, self.config.models.min_train, neural)
        self.lookahead.clear()
        self.models_fitted = self.models_fitted or all(used.values())
        log.info("models_refit", samples=used)
        if retraining is not None and self.models_fitted:
            retraining.start(self.parts.history, self.parts.clock.now_ms())

    def _queue_decision(self, interval: Interval, prices: dict[str, float]) -> None:
        ts, lookback = interval.ts, self.ensemble.lookback
        symbols = [s for s in prices if self.parts.buffers.is_warm(s, lookback)]
        sources = _sources(interval, symbols)
        windows = self.parts.buffers.windows(symbols, lookback) if sources is None else None
        target = ts + self.horizon * self.step_ms
        entries = [PendingEntry(s, ts, target, prices[s]) for s in symbols]
        for entry in entries:
            self._pending[entry.symbol].append(entry)
        job = DecisionJob(ts, prices, symbols, windows, entries, interval.tradable, sources)
        self._ops.append(job)
        self._jobs += 1

    # ------------------------------------------------------------------ barrier

    async def flush(self) -> None:
        """Evaluate queued decisions in one batch, trade them, then write everything in order."""
        if self._ops:
            self._bind_log()
            if os.path.exists(self._kill_path):  # before any queued decision can trade
                await self.kill("kill_file")
            jobs = [op for op in self._ops if isinstance(op, DecisionJob)]
            decisions = self._decide(jobs)
            writes = Writes()
            for op in self._ops:
                if isinstance(op, DecisionJob):
                    await self._act(op, decisions[id(op)], writes)
                else:
                    writes.resolutions.append(op)
            with self.ledger.transaction():
                self._write(writes)
            if jobs:
                self.decision_latency_s = time.perf_counter() - self._received
            self._notify(jobs, decisions, writes)
            self._learn(writes.resolutions)
            self._ops.clear()
            self._jobs = 0
        self._updates_left = self.ensemble.fusion.updates_until_change()

    def _decide(self, jobs: Sequence[DecisionJob]) -> dict[int, list[Decision]]:
        rows = [(job, i) for job in jobs for i in range(len(job.symbols))]
        grouped: dict[int, list[Decision]] = {id(job): [] for job in jobs}
        if not rows:
            return grouped
        decisions = self.ensemble.decide_inferred(
            [job.symbols[i] for job, i in rows],
            [job.ts for job, _ in rows],
            [job.prices[job.symbols[i]] for job, i in rows],
            *self._infer(jobs, rows),
        )
        for (job, i), decision in zip(rows, decisions, strict=True):
            job.entries[i].inputs = decision.inputs
            grouped[id(job)].append(decision)
        return grouped

    def _infer(
        self, jobs: Sequence[DecisionJob], rows: Sequence[tuple[DecisionJob, int]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Base-model outputs of every queued decision: looked ahead in a replay's feature
        tables (models frozen until their next refit), else inferred from the windows."""
        if all(job.sources is not None for job in jobs):
            return self.lookahead.gather([self._request(job, i) for job, i in rows])
        return self.ensemble.infer(np.concatenate([self._windows(job) for job in jobs]))

    def _request(self, job: DecisionJob, i: int) -> Request:
        assert job.sources is not None
        table, position = job.sources[i]
        return job.symbols[i], table, position, self._frozen_for(job.ts)

    def _frozen_for(self, ts: int) -> int:
        """Intervals from `ts` on for which the base models stay as they are (until the
        next scheduled refit; an earlier change clears the look-ahead)."""
        return self._refit_every - (ts // self.step_ms) % self._refit_every

    def _windows(self, job: DecisionJob) -> np.ndarray:
        if job.windows is not None:
            return job.windows
        lookback, sources = self.ensemble.lookback, job.sources or []
        shape = (0, lookback, NUM_FEATURES)
        windows = [table[p + 1 - lookback : p + 1] for table, p in sources]
        return np.stack(windows) if windows else np.empty(shape)

    async def _act(self, job: DecisionJob, decisions: list[Decision], writes: Writes) -> None:
        traded = self._collect_fills(await self.trader.poll(), writes)  # live resting orders
        for decision, entry in zip(decisions, job.entries, strict=True):
            writes.predictions.append((self._prediction(decision, entry), entry))
            if self.trading_paused or not job.tradable:
                continue
            fills = await self.trader.on_forecast(
                decision.symbol, decision.ts, decision.close, decision.prob_up, decision.confidence
            )
            self._log_orders()
            traded |= self._collect_fills(fills, writes)
            if self._debug:
                self._log.debug(
                    "decision",
                    symbol=decision.symbol,
                    ts=decision.ts,
                    prob_up=decision.prob_up,
                    baseline=decision.baseline,
                    fused=decision.fused,
                    action=decision.action,
                )
        row = self._equity_row(job.ts, job.prices, with_state=traded)
        writes.equity.append(row)
        self._log_interval(job.ts, decisions, row)
        writes.progress.update(dict.fromkeys(job.prices, job.ts))
        self.summary.decisions += len(decisions)

    def _write(self, writes: Writes) -> None:
        first = self.ledger.next_id  # ids first: this flush may resolve its own predictions
        for k, (_, entry) in enumerate(writes.predictions):
            entry.id = first + k
        resolutions = [(r.entry.id, r.outcome, r.close) for r in writes.resolutions]
        self.ledger.add_predictions([p for p, _ in writes.predictions], resolutions)
        if self._debug:
            for r in writes.resolutions:
                self._log.debug(
                    "outcome_resolved", symbol=r.entry.symbol, ts=r.entry.ts, outcome=r.outcome
                )
        self.ledger.add_fills(writes.fills)
        self.ledger.add_equity(writes.equity)
        self.ledger.set_progress(writes.progress)
        self.summary.resolved += len(writes.resolutions)

    def _notify(
        self, jobs: Sequence[DecisionJob], decisions: dict[int, list[Decision]], writes: Writes
    ) -> None:
        if not self.observers:
            return
        for job, equity in zip(jobs, writes.equity, strict=True):
            self.observers.emit("on_decisions", job.ts, decisions[id(job)])
            self.observers.emit("on_interval", job.ts, equity)
        if writes.fill_objects:
            self.observers.emit("on_fills", writes.fill_objects)

    def _learn(self, resolutions: Sequence[Resolution]) -> None:
        """Feed decided (non-tie) outcomes, in resolution order, to the fusion."""
        learned = [r for r in resolutions if r.outcome != "TIE" and r.entry.inputs is not None]
        self.ensemble.record_outcomes(
            [r.entry.inputs for r in learned if r.entry.inputs is not None],
            [r.outcome for r in learned],
        )
        if learned and self._debug:
            fusion = self.ensemble.fusion
            self._log.debug(
                "fusion_update",
                outcomes=len(learned),
                samples_seen=fusion.samples_seen,
                train_steps=fusion.trainer.steps,
                active=fusion.is_active,
            )

    def _prediction(self, decision: Decision, entry: PendingEntry) -> Prediction:
        d = decision
        return Prediction(
            d.symbol,
            d.ts,
            entry.target_ts,
            d.close,
            d.prob_up,
            d.baseline,
            d.confidence,
            d.fused,
            d.action,
            d.inputs.to_json(),
            d.attention,
        )

    def _log_orders(self) -> None:
        report = self.trader.last_report
        if report is not None and report.orders and self._info:
            for order in report.orders:
                self._log.info("order", reasons=list(report.reasons), **order.to_dict())

    def _collect_fills(self, fills: Sequence[Fill], writes: Writes) -> bool:
        if not fills:
            return False
        report = self.trader.last_report
        reason = ",".join(report.reasons) if report is not None and report.reasons else None
        for fill in fills:
            fields = fill.to_dict()
            writes.fills.append({**fields, "reason": reason})
            writes.fill_objects.append(fill)
            if self._info:
                self._log.info("fill", **fields)
        self.summary.fills += len(fills)
        return bool(fills)

    def _equity_row(self, ts: int, prices: dict[str, float], with_state: bool) -> EquityRow:
        if with_state:
            snapshot = self.trader.snapshot(prices)
            exposure = snapshot["exposure"] or 0.0
            return EquityRow(ts, snapshot["equity"], snapshot["cash"], exposure, snapshot)
        marks = {**self.trader.marks, **prices}
        book = self.trader.portfolio
        equity = book.equity(marks)
        exposure = book.gross_exposure(marks) / equity if equity > 0 else 0.0
        return EquityRow(ts, equity, book.cash, exposure)

    def _bind_log(self) -> None:
        """Bind the logger once per flush and note which levels it emits, so that events
        no one receives cost neither a proxy lookup nor their fields."""
        self._log = log.bind()
        enabled = getattr(self._log, "is_enabled_for", None)
        self._debug = enabled is None or bool(enabled(logging.DEBUG))
        self._info = enabled is None or bool(enabled(logging.INFO))

    def _log_interval(self, ts: int, decisions: Sequence[Decision], equity: EquityRow) -> None:
        """One `interval` event per interval (every `log_every`-th), decisions summarised."""
        if self._info and (ts // self.step_ms) % self._log_every == 0:
            summary = {d.symbol: {"p": round(d.prob_up, 5), "action": d.action} for d in decisions}
            self._log.info("interval", ts=ts, equity=round(equity.equity, 4), decisions=summary)

    async def _flatten(self, ts: int) -> None:
        prices = dict(self.trader.marks)
        writes = Writes()
        self._collect_fills(await self.trader.flatten_all(prices, ts), writes)
        writes.equity.append(self._equity_row(ts, prices, with_state=True))
        with self.ledger.transaction():
            self._write(writes)
        self.observers.emit("on_fills", writes.fill_objects)
        self.observers.emit("on_interval", ts, writes.equity[-1])
        log.info("flattened", fills=len(writes.fills))

    # ------------------------------------------------------------------ persistence

    def _store_stats(self, ts: int) -> None:
        stats = dict(self.ensemble.fusion.get_training_stats())
        stats["attention"] = self.ensemble.fusion.get_attention_weights()
        with self.ledger.transaction():
            self.ledger.add_fusion_stats(ts, stats)
        self.observers.emit("on_stats", ts, stats)
        if not self._info:
            return
        self._log.info(
            "fusion_stats",
            ts=ts,
            **{k: v for k, v in stats.items() if k != "attention"},
            attention=stats["attention"],
        )

    def checkpoint(self, ts: int) -> None:
        state = EngineState(
            ts,
            self.ledger.last_seq,
            self.ensemble.fusion,
            self.parts.buffers.state_dict(),
            self.parts.history.state_dict(),
            self.ensemble.model_states(),
            self.trader.state_dict(),
            self.models_fitted,
        )
        self.parts.checkpointer.save(ts // self.step_ms, lambda d: write_state(d, state))
        self.ledger.checkpoint_wal()

    def restore(self) -> int | None:
        """Resume from the newest valid checkpoint (rolling the ledger back to it)."""
        loaded = self.parts.checkpointer.load(state_reader(self.parts.make_fusion))
        if loaded is None:
            self.ledger.rollback_after(None, 0)
            if self.parts.retraining is not None:
                self.parts.retraining.load_registered()
            self._updates_left = self.ensemble.fusion.updates_until_change()
            return None
        state = loaded[1]
        self.ensemble.fusion = state.fusion
        self.parts.buffers.load_state_dict(state.buffers)
        self.parts.history.load_state_dict(state.history)
        self.ensemble.load_model_states(state.models)
        self.lookahead.clear()
        self.models_fitted = state.models_fitted
        self.trader.load_state_dict(state.trader)
        self.ledger.rollback_after(state.last_ts, state.seq)
        for pending in self.ledger.pending():
            entry = PendingEntry(
                pending.symbol,
                pending.ts,
                pending.target_ts,
                pending.close,
                pending.id,
                Inputs.from_json(dict(pending.inputs)),
            )
            self._pending[entry.symbol].append(entry)
        self.last_ts = state.last_ts
        self._updates_left = self.ensemble.fusion.updates_until_change()
        log.info(
            "engine_resumed",
            last_ts=state.last_ts,
            seq=state.seq,
            pending=sum(len(q) for q in self._pending.values()),
        )
        return state.last_ts


async def _close(feed: AsyncIterable[Interval]) -> None:
    """Close a feed that holds resources (connections, buffered candles to persist)."""
    aclose = getattr(feed, "aclose", None)
    if aclose is not None:
        await aclose()


def _sources(interval: Interval, symbols: Sequence[str]) -> list[FeatureRow] | None:
    """Where `symbols`' rows of this interval lie in a replay's feature tables (or None)."""
    if interval.features is None:
        return None
    if len(symbols) == len(interval.features):  # every candle's symbol decides, in order
        return list(interval.features)
    by_symbol = dict(zip((c.symbol for c in interval.candles), interval.features, strict=True))
    return [by_symbol[symbol] for symbol in symbols]
