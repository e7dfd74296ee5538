"""Live statistics of a running daemon (`StatsCollector`) and the persisted view (`titan stats`).

`StatsCollector` is an engine observer: each hook updates a few dicts (cheap, on the
engine's task). `snapshot()` turns them into the JSON document the runtime writes to the
health file, publishes on MQTT `stats` and serves on `/health`. `persisted_stats` reads
what a daemon (running or not) left in `runtime.state_dir`: the ledger, the newest
checkpoints, the newest version of each model in the model registry and the health
file. The MQTT payloads of decisions and fills are built here
too, so every outside view of a decision has one shape.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from titan.clock import LiveClock
from titan.engine.ensemble import Decision
from titan.engine.feed import Interval
from titan.engine.ledger import EquityRow, Ledger
from titan.ops.logging import strict_json
from titan.trading.types import Fill
from titan.training.registry import ModelRegistry

log = structlog.get_logger(__name__)
SNAPSHOT_VERSION = 1
Provider = Callable[[], Any]
FUSION_LOG_KEYS = ("samples_seen", "train_steps", "train_loss", "val_loss", "current_lr")


@dataclass
class SymbolStats:
    last_candle_ts: int | None = None
    close: float | None = None
    candles: int = 0
    decisions: int = 0
    last_decision: dict[str, Any] | None = None


@dataclass
class StatsCollector:
    """Engine observer that keeps what `snapshot()` reports (see the module docstring)."""

    instance: str
    mode: str
    starting_cash: float
    providers: dict[str, Provider] = field(default_factory=dict)
    model_names: tuple[str, ...] = ()
    clock: LiveClock = field(default_factory=LiveClock)

    def __post_init__(self) -> None:
        self.status = "starting"
        self.started_at = self.clock.now_ms()
        self.last_interval_at: int | None = None
        self.last_interval_ts: int | None = None
        self.counts = {"intervals": 0, "candles": 0, "decisions": 0, "fills": 0}
        self.symbols: dict[str, SymbolStats] = {}
        self.equity: dict[str, float] | None = None
        self.account: Mapping[str, Any] | None = None
        self.fusion: dict[str, Any] | None = None
        self.version = 0  # bumped on every change: writers skip unchanged snapshots

    def _symbol(self, symbol: str) -> SymbolStats:
        stats = self.symbols.get(symbol)
        if stats is None:
            stats = self.symbols[symbol] = SymbolStats()
        return stats

    # ---------------------------------------------------------------- engine hooks

    def on_candles(self, interval: Interval) -> None:
        """Every processed interval (the engine's `on_interval` callback)."""
        for candle in interval.candles:
            stats = self._symbol(candle.symbol)
            stats.last_candle_ts, stats.close = candle.ts, candle.close
            stats.candles += 1
            log.debug("candle_accepted", symbol=candle.symbol, ts=candle.ts, close=candle.close)
        self.counts["intervals"] += 1
        self.counts["candles"] += len(interval.candles)
        self.last_interval_ts = interval.ts
        self.last_interval_at = self.clock.now_ms()
        self.version += 1

    def on_decisions(self, ts: int, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            stats = self._symbol(decision.symbol)
            stats.decisions += 1
            stats.last_decision = {
                "ts": decision.ts,
                "prob_up": decision.prob_up,
                "action": decision.action,
                "target": decision.target,
                "fused": decision.fused,
            }
        self.counts["decisions"] += len(decisions)
        self.version += 1

    def on_fills(self, fills: Sequence[Fill]) -> None:
        self.counts["fills"] += len(fills)
        self.version += 1

    def on_interval(self, ts: int, equity: EquityRow) -> None:
        self.equity = {
            "ts": ts,
            "equity": equity.equity,
            "cash": equity.cash,
            "exposure": equity.exposure,
            "pnl": equity.equity - self.starting_cash,
        }
        if equity.state is not None:
            self.account = equity.state
        self.version += 1

    def on_stats(self, ts: int, stats: Mapping[str, Any]) -> None:
        self.fusion = {"ts": ts, **named_attention(stats, self.model_names)}
        log.info("fusion_stats", ts=ts, **{k: stats.get(k) for k in FUSION_LOG_KEYS})
        self.version += 1

    def on_status(self, status: str) -> None:
        self.status = status
        self.version += 1

    # ---------------------------------------------------------------- output

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state (schema in docs/operations.md)."""
        document: dict[str, Any] = {
            "version": SNAPSHOT_VERSION,
            "instance": self.instance,
            "mode": self.mode,
            "pid": os.getpid(),
            "status": self.status,
            "started_at": self.started_at,
            "updated_at": self.clock.now_ms(),
            "last_interval_at": self.last_interval_at,
            "last_interval_ts": self.last_interval_ts,
            **self.counts,
            "equity": self.equity,
            "positions": None if self.account is None else self.account.get("positions"),
            "symbols": {name: vars(stats) for name, stats in sorted(self.symbols.items())},
            "fusion": self.fusion,
        }
        for key, provider in self.providers.items():
            document[key] = _call(provider, key)
        return document


def named_attention(stats: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """`stats` with the fusion's `model_<i>` attention keys renamed to the model names."""
    attention = stats.get("attention")
    if not isinstance(attention, Mapping) or not names:
        return dict(stats)
    renamed = {}
    for key, weight in attention.items():
        index = key.removeprefix("model_")
        known = index.isdigit() and int(index) < len(names)
        renamed[names[int(index)] if known else key] = weight
    return {**stats, "attention": renamed}


def dumps(document: Any) -> str:
    """Compact strict JSON (non-finite floats become null)."""
    return strict_json(document, separators=(",", ":"), default=str)


def _call(provider: Provider, key: str) -> Any:
    try:
        return provider()
    except Exception as exc:  # a provider's bug must not stop the snapshot
        log.warning("stats_provider_failed", provider=key, error=f"{type(exc).__name__}: {exc}")
        return None


# ------------------------------------------------------------------ MQTT payloads


def signal_payload(instance: str, decision: Decision, sent_at: int) -> dict[str, Any]:
    return {
        "id": f"{instance}:{decision.symbol}:{decision.ts}",
        "instance": instance,
        "symbol": decision.symbol,
        "ts": decision.ts,
        "action": decision.action,
        "target": decision.target,
        "prob_up": decision.prob_up,
        "confidence": decision.confidence,
        "close": decision.close,
        "sent_at": sent_at,
    }


def decision_payload(
    instance: str, decision: Decision, names: Sequence[str], sent_at: int
) -> dict[str, Any]:
    inputs = decision.inputs
    models = {
        name: {"prob_up": p, "confidence": c}
        for name, p, c in zip(names, inputs.prob, inputs.confidence, strict=False)
    }
    attention = (
        None if decision.attention is None else dict(zip(names, decision.attention, strict=False))
    )
    return {
        **signal_payload(instance, decision, sent_at),
        "baseline": decision.baseline,
        "fused": decision.fused,
        "models": models,
        "context": list(inputs.context),
        "attention": attention,
    }


def fill_payload(instance: str, fill: Fill, sent_at: int) -> dict[str, Any]:
    return {
        "id": fill.order_id,
        "instance": instance,
        **fill.to_dict(),
        "notional": fill.notional,
        "sent_at": sent_at,
    }


# ------------------------------------------------------------------ persisted view


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def persisted_stats(
    state_dir: Path,
    health_file: Path,
    starting_cash: float,
    model_names: Sequence[str] = (),
    registry_dir: Path | None = None,
) -> dict[str, Any]:
    """Everything `titan stats` shows, read from a state directory (the daemon may run).

    `registry_dir` is the model registry (`training.registry.dir`); when it does not
    exist, `<state_dir>/models` is read.
    """
    health = read_json(health_file)
    names = (health or {}).get("models") or model_names
    registry = registry_root(state_dir, registry_dir)
    return {
        "state_dir": str(state_dir),
        "ledger": ledger_stats(state_dir / "ledger.db", starting_cash, names),
        "checkpoints": checkpoint_versions(state_dir / "checkpoints"),
        "model_registry": str(registry),
        "model_versions": model_versions(registry),
        "health": health,
    }


def ledger_stats(
    path: Path, starting_cash: float, model_names: Sequence[str] = ()
) -> dict[str, Any] | None:
    """Per-symbol decisions, hit rate, fills and position; account and newest fusion stats."""
    if not path.is_file():
        return None
    ledger = Ledger(path)
    try:
        return _ledger_stats(ledger.db, starting_cash, model_names)
    finally:
        ledger.db.close()  # not Ledger.close(): a reader must not checkpoint the daemon's WAL


def _ledger_stats(
    db: sqlite3.Connection, starting_cash: float, names: Sequence[str]
) -> dict[str, Any]:
    symbols = _symbol_rows(db)
    account = _account(db, starting_cash)
    positions = (account.get("state") or {}).get("positions") or {}
    for name, row in symbols.items():
        row["position"] = _marked(positions.get(name), row.get("close"))
    fusion = db.execute("SELECT ts, stats FROM fusion_stats ORDER BY ts DESC LIMIT 1").fetchone()
    return {
        "symbols": symbols,
        "account": account,
        "fusion": None
        if fusion is None
        else {"ts": fusion[0], **named_attention(json.loads(fusion[1]), names)},
    }


_SYMBOLS_SQL = """
SELECT p.symbol, COUNT(*), MAX(p.ts), SUM(p.seq IS NOT NULL),
       AVG(CASE WHEN p.outcome IN ('UP', 'DOWN')
           THEN CAST((p.prob_up > 0.5) = (p.outcome = 'UP') AS REAL) END),
       SUM(p.action != 'flat')
FROM predictions p GROUP BY p.symbol
"""
_LAST_SQL = """
SELECT p.symbol, p.ts, p.close, p.prob_up, p.action, p.fused FROM predictions p
JOIN (SELECT symbol, MAX(ts) AS ts FROM predictions GROUP BY symbol) m
ON p.symbol = m.symbol AND p.ts = m.ts
"""


def _symbol_rows(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    progress = dict(db.execute("SELECT symbol, ts FROM progress").fetchall())
    for symbol, count, last_ts, resolved, hit_rate, active in db.execute(_SYMBOLS_SQL):
        rows[symbol] = {
            "last_candle_ts": progress.get(symbol, last_ts),
            "decisions": count,
            "resolved": resolved,
            "hit_rate": hit_rate,
            "in_market_decisions": active,
        }
    for symbol, ts, close, prob_up, action, fused in db.execute(_LAST_SQL):
        rows[symbol]["close"] = close
        rows[symbol]["last_decision"] = {
            "ts": ts,
            "prob_up": prob_up,
            "action": action,
            "fused": bool(fused),
        }
    for symbol, count, fees in db.execute(
        "SELECT symbol, COUNT(*), SUM(fee) FROM fills GROUP BY 1"
    ):
        rows.setdefault(symbol, {}).update(fills=count, fees=fees)
    return rows


def _account(db: sqlite3.Connection, starting_cash: float) -> dict[str, Any]:
    last = db.execute("SELECT ts, equity, cash, exposure FROM equity ORDER BY ts DESC LIMIT 1")
    row = last.fetchone()
    state = db.execute(
        "SELECT state FROM equity WHERE state IS NOT NULL ORDER BY ts DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return {"state": None}
    ts, equity, cash, exposure = row
    return {
        "ts": ts,
        "equity": equity,
        "cash": cash,
        "exposure": exposure,
        "pnl": equity - starting_cash,
        "state": None if state is None else json.loads(state[0]),
    }


def _marked(position: Mapping[str, Any] | None, close: float | None) -> dict[str, Any] | None:
    """A stored position re-marked at the newest close (its stored mark may be older)."""
    if not position or not position.get("quantity"):
        return None
    quantity, avg = float(position["quantity"]), float(position["avg_price"])
    price = float(close if close is not None else position.get("price", avg))
    return {
        "quantity": quantity,
        "avg_price": avg,
        "price": price,
        "value": quantity * price,
        "unrealized_pnl": quantity * (price - avg),
    }


def checkpoint_versions(root: Path, limit: int = 5) -> list[dict[str, Any]]:
    """Newest checkpoints: step, write time, fusion model hash and samples it had seen."""
    if not root.is_dir():
        return []
    found = sorted((p for p in root.glob("ckpt-*") if p.is_dir()), reverse=True)[:limit]
    return [_checkpoint_info(path) for path in found]


def _checkpoint_info(path: Path) -> dict[str, Any]:
    manifest = read_json(path / "manifest.json") or {}
    fusion = read_json(path / "fusion" / "fusion_state.json") or {}
    digest = fusion.get("model_sha256")
    return {
        "name": path.name,
        "step": manifest.get("step"),
        "written_at": int(path.stat().st_mtime * 1000),
        "fusion_sha256": digest[:12] if isinstance(digest, str) else None,
        "fusion_samples_seen": fusion.get("samples_seen"),
    }


def model_versions(root: Path) -> dict[str, dict[str, Any]]:
    """Per registered model: its newest version that verifies, when it was trained, by which
    code, and how many versions are stored. Empty when there is no registry."""
    if not root.is_dir():
        return {}
    registry = ModelRegistry(root)
    found = {}
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        stored = registry.versions(path.name)
        if stored:
            found[path.name] = _model_version(registry.latest_meta(path.name), len(stored))
    return found


def _model_version(meta: Mapping[str, Any] | None, stored: int) -> dict[str, Any]:
    meta = meta or {}  # None: no stored version verifies
    return {
        "version": meta.get("version"),
        "created_ms": meta.get("created_ms"),
        "code_version": meta.get("code_version"),
        "parameters": meta.get("parameters"),
        "stored_versions": stored,
    }


def registry_root(state_dir: Path, configured: Path | None) -> Path:
    """The model registry `titan stats` reads: the configured one, else `<state_dir>/models`."""
    if configured is not None and Path(configured).is_dir():
        return Path(configured)
    return state_dir / "models"
