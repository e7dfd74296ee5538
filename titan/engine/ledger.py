"""The outcome ledger: predictions, outcomes, fills, equity and progress in SQLite (WAL).

Every prediction is stored with the model outputs that went into it, the fused
probability and the decision; it is resolved exactly once when its horizon matures,
and each resolution gets a strictly increasing `seq`. The engine writes one interval
per transaction (`transaction()`), so after a crash the ledger ends on an interval
boundary. Restart logic uses `seq` to re-apply, to a checkpointed fusion, exactly the
outcomes it had not yet seen. The schema is versioned (`PRAGMA user_version`) and
migrated forward on open. The `orders` table holds every order Titan submits live (by
client order id) and is never rolled back: those orders exist on the exchange.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import orjson
import polars as pl

Outcome = Literal["UP", "DOWN", "TIE"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE predictions (
        id INTEGER PRIMARY KEY,
        symbol TEXT NOT NULL,
        ts INTEGER NOT NULL,
        target_ts INTEGER NOT NULL,
        close REAL NOT NULL,
        prob_up REAL NOT NULL,
        baseline REAL NOT NULL,
        confidence REAL NOT NULL,
        fused INTEGER NOT NULL,
        action TEXT NOT NULL,
        inputs TEXT NOT NULL,
        attention TEXT,
        outcome TEXT,
        outcome_close REAL,
        seq INTEGER UNIQUE,
        UNIQUE (symbol, ts)
    );
    CREATE INDEX predictions_pending ON predictions (target_ts) WHERE seq IS NULL;
    CREATE TABLE fills (
        order_id TEXT PRIMARY KEY,
        symbol TEXT NOT NULL,
        ts INTEGER NOT NULL,
        side TEXT NOT NULL,
        quantity REAL NOT NULL,
        price REAL NOT NULL,
        fee REAL NOT NULL,
        reason TEXT
    );
    CREATE TABLE equity (
        ts INTEGER PRIMARY KEY,
        equity REAL NOT NULL,
        cash REAL NOT NULL,
        exposure REAL NOT NULL,
        state TEXT
    );
    CREATE TABLE progress (symbol TEXT PRIMARY KEY, ts INTEGER NOT NULL);
    CREATE TABLE fusion_stats (ts INTEGER PRIMARY KEY, stats TEXT NOT NULL);
    """,
    # 2: the orders Titan submits, so a restart recognises its own resting orders.
    """
    CREATE TABLE orders (
        client_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        exchange_id TEXT,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        type TEXT NOT NULL,
        amount REAL NOT NULL,
        price REAL,
        status TEXT NOT NULL,
        ts INTEGER NOT NULL
    );
    CREATE INDEX orders_status ON orders (status);
    """,
    # 3: no query uses this index (pending() reads the unique index on seq); keeping it
    # cost every insert and resolution.
    "DROP INDEX IF EXISTS predictions_pending;",
)
# Order statuses after which an order can never rest on the exchange again; `absent`: not
# open on the exchange at a start-up reconciliation (filled, cancelled or never placed).
ABSENT = "absent"
FINAL_ORDER_STATUSES = ("closed", "canceled", "expired", "rejected", ABSENT)


_UNRESOLVED = (None, None, None)  # outcome, outcome_close, seq of a pending prediction


class Prediction(NamedTuple):  # a NamedTuple (as EquityRow): one per decision, cheap to make
    symbol: str
    ts: int
    target_ts: int
    close: float
    prob_up: float
    baseline: float
    confidence: float
    fused: bool
    action: str
    inputs: Mapping[str, Any]
    attention: tuple[float, ...] | None = None


class EquityRow(NamedTuple):
    ts: int
    equity: float
    cash: float
    exposure: float
    state: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    symbol: str
    ts: int
    target_ts: int
    close: float
    inputs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Resolution:
    seq: int
    symbol: str
    ts: int
    outcome: Outcome
    inputs: Mapping[str, Any]


def json_text(value: Any) -> str:
    """`value` as JSON text that `json.loads` reads back exactly as from `json.dumps(value)`.

    orjson is much faster than `json` (which spends most of its time formatting floats);
    it writes NaN and infinities as null and refuses what it does not know (numpy scalars,
    non-str keys), so those values are written by `json` instead.
    """
    try:
        text = orjson.dumps(value)
    except TypeError:
        return json.dumps(value)
    return json.dumps(value) if b"null" in text else text.decode()


class Ledger:
    """One SQLite database per run state directory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # The engine checkpoints the WAL itself (`checkpoint_wal`), off the decision path:
        # SQLite's automatic checkpoints were the main source of decision-latency spikes.
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self._migrate()
        self._sync_counters()

    def close(self) -> None:
        self.checkpoint_wal()
        self.db.close()

    def checkpoint_wal(self) -> None:
        """Copy the write-ahead log into the database file; writes then restart at the
        log's start. The file keeps its size: overwriting it is cheaper than regrowing a
        truncated log (SQLite deletes the log when the ledger is closed)."""
        self.db.execute("PRAGMA wal_checkpoint(RESTART)")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        for version, script in enumerate(MIGRATIONS, start=1):
            if self.schema_version < version:
                self.db.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")

    def _sync_counters(self) -> None:
        seq, rowid = self.db.execute("SELECT MAX(seq), MAX(id) FROM predictions").fetchone()
        self._next_seq = (seq or 0) + 1
        self._next_id = (rowid or 0) + 1

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            self._sync_counters()  # ids and seqs handed out inside were not kept
            raise
        self.db.execute("COMMIT")

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def add_predictions(
        self,
        predictions: Iterable[Prediction],
        resolutions: Sequence[tuple[int, Outcome, float]] = (),
    ) -> list[int]:
        """Insert predictions in order (their ids are consecutive from `next_id`), then
        resolve `resolutions` in order as `resolve_many` does; those of predictions inserted
        here are written with the row instead of updating it."""
        first = self._next_id
        seqs = range(self._next_seq, self._next_seq + len(resolutions))
        inline = {pid: (o, c, seq) for (pid, o, c), seq in zip(resolutions, seqs, strict=True)}
        if len(inline) != len(resolutions):
            raise ValueError("a prediction is resolved twice")
        rows = [
            (
                i,
                p.symbol,
                p.ts,
                p.target_ts,
                p.close,
                p.prob_up,
                p.baseline,
                p.confidence,
                int(p.fused),
                p.action,
                json_text(p.inputs),
                None if p.attention is None else json_text(p.attention),
                *inline.pop(i, _UNRESOLVED),
            )
            for i, p in enumerate(predictions, start=first)
        ]
        self.db.executemany(
            "INSERT INTO predictions (id, symbol, ts, target_ts, close, prob_up, baseline,"
            " confidence, fused, action, inputs, attention, outcome, outcome_close, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self._next_id += len(rows)
        self._update_resolutions([(o, c, seq, pid) for pid, (o, c, seq) in inline.items()])
        self._next_seq += len(resolutions)
        return list(range(first, self._next_id))

    @property
    def next_id(self) -> int:
        """The id the next inserted prediction gets."""
        return self._next_id

    def pending(self) -> list[Pending]:
        """Unresolved predictions, oldest first."""
        rows = self.db.execute(
            "SELECT id, symbol, ts, target_ts, close, inputs FROM predictions"
            " WHERE seq IS NULL ORDER BY id"
        )
        return [
            Pending(int(i), str(s), int(t), int(tt), float(c), json.loads(x))
            for i, s, t, tt, c, x in rows
        ]

    def resolve(self, prediction_id: int, outcome: Outcome, close: float) -> int:
        """Record the outcome of one prediction; returns its resolution seq. Resolves once only."""
        return self.resolve_many([(prediction_id, outcome, close)])[0]

    def resolve_many(self, items: Sequence[tuple[int, Outcome, float]]) -> list[int]:
        """Resolve predictions in order, each exactly once; returns their seqs."""
        first = self._next_seq
        self.add_predictions([], items)
        return list(range(first, self._next_seq))

    def _update_resolutions(self, rows: Sequence[tuple[Outcome, float, int, int]]) -> None:
        cursor = self.db.executemany(
            "UPDATE predictions SET outcome = ?, outcome_close = ?, seq = ?"
            " WHERE id = ? AND seq IS NULL",
            rows,
        )
        if cursor.rowcount != len(rows):
            raise ValueError("a prediction is unknown or already resolved")

    def resolutions_after(self, seq: int) -> list[Resolution]:
        """Resolutions with seq > `seq`, in order (to re-apply to a restored fusion)."""
        rows = self.db.execute(
            "SELECT seq, symbol, ts, outcome, inputs FROM predictions WHERE seq > ? ORDER BY seq",
            (seq,),
        )
        return [Resolution(s, sym, ts, out, json.loads(inputs)) for s, sym, ts, out, inputs in rows]

    def rollback_after(self, ts: int | None, seq: int) -> None:
        """Forget everything after interval `ts` and resolution `seq` (restart from a checkpoint).

        `ts=None` empties the ledger. Predictions made after `ts` are deleted, outcomes
        resolved after `seq` become pending again; the engine then recomputes them.
        """
        cutoff = -1 if ts is None else ts
        with self.transaction():
            self.db.execute("DELETE FROM predictions WHERE ts > ?", (cutoff,))
            self.db.execute(
                "UPDATE predictions SET outcome = NULL, outcome_close = NULL, seq = NULL"
                " WHERE seq > ?",
                (seq,),
            )
            for table in ("fills", "equity", "fusion_stats"):
                self.db.execute(f"DELETE FROM {table} WHERE ts > ?", (cutoff,))
            self.db.execute("DELETE FROM progress WHERE ts > ?", (cutoff,))
        self._sync_counters()

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def add_fills(self, fills: Iterable[Mapping[str, Any]]) -> None:
        self.db.executemany(
            "INSERT INTO fills VALUES"
            " (:order_id, :symbol, :ts, :side, :quantity, :price, :fee, :reason)",
            [{"reason": None, **fill} for fill in fills],
        )

    def add_equity(self, rows: Iterable[EquityRow]) -> None:
        """Per-interval equity; `state` (the full account snapshot) only where it changed."""
        self.db.executemany(
            "INSERT OR REPLACE INTO equity VALUES (?, ?, ?, ?, ?)",
            [
                (
                    r.ts,
                    r.equity,
                    r.cash,
                    r.exposure,
                    None if r.state is None else json.dumps(r.state),
                )
                for r in rows
            ],
        )

    def set_progress(self, progress: Mapping[str, int]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO progress VALUES (?, ?)", progress.items())

    def progress(self) -> dict[str, int]:
        return {
            symbol: int(ts) for symbol, ts in self.db.execute("SELECT symbol, ts FROM progress")
        }

    def add_fusion_stats(self, ts: int, stats: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO fusion_stats VALUES (?, ?)", (ts, json.dumps(stats))
        )

    def record_order(self, order: Mapping[str, Any]) -> None:
        """Store one order Titan submits (keys as the `orders` columns; `exchange_id`
        optional), before it is sent; submitting the same client id again updates it."""
        self.db.execute(
            "INSERT INTO orders (client_id, order_id, exchange_id, symbol, side, type, amount,"
            " price, status, ts) VALUES (:client_id, :order_id, :exchange_id, :symbol, :side,"
            " :type, :amount, :price, :status, :ts)"
            " ON CONFLICT (client_id) DO UPDATE SET status = excluded.status,"
            " exchange_id = COALESCE(excluded.exchange_id, orders.exchange_id)",
            {"exchange_id": None, **order},
        )

    def update_order(self, client_id: str, status: str, exchange_id: str | None = None) -> None:
        """The exchange's latest status (and id) of a stored order; unknown ids are ignored."""
        self.db.execute(
            "UPDATE orders SET status = ?, exchange_id = COALESCE(?, exchange_id)"
            " WHERE client_id = ?",
            (status, exchange_id, client_id),
        )

    def orders(self, *, unfinished: bool = False) -> list[dict[str, Any]]:
        """Stored orders, oldest first; `unfinished`: only those that may still rest."""
        final = FINAL_ORDER_STATUSES if unfinished else ()
        where = f"WHERE status NOT IN ({', '.join('?' * len(final))})" if final else ""
        cursor = self.db.execute(f"SELECT * FROM orders {where} ORDER BY ts, rowid", final)
        columns = [description[0] for description in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor]

    def frame(self, table: str) -> pl.DataFrame:
        """A whole table as a polars DataFrame (reports, tests)."""
        if table not in {"predictions", "fills", "equity", "progress", "fusion_stats"}:
            raise ValueError(f"unknown table {table!r}")
        cursor = self.db.execute(f"SELECT * FROM {table} ORDER BY 1")
        columns = [description[0] for description in cursor.description]
        return pl.DataFrame(
            cursor.fetchall(), schema=columns, orient="row", infer_schema_length=None
        )
