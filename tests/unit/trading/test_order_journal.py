"""The ledger's order journal: the `orders` table (schema migration 2) that lets a restarted
live daemon recognise its own resting orders."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from titan.engine.ledger import MIGRATIONS, Ledger
from titan.trading.live_orders import OrderJournal, OrderRequest, journal_row
from titan.trading.types import Order, order_id

BTC = "BTC/USDT"


def _row(client_id: str, status: str = "new", ts: int = 0) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "order_id": f"id-{client_id}",
        "symbol": BTC,
        "side": "buy",
        "type": "limit",
        "amount": 0.01,
        "price": 40_000.0,
        "status": status,
        "ts": ts,
    }


def _version_1_database(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    db.execute("INSERT INTO fills VALUES ('f1', ?, 5, 'buy', 0.1, 50000.0, 5.0, NULL)", (BTC,))
    db.close()


def test_a_version_1_ledger_is_migrated_to_the_orders_table_keeping_its_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    _version_1_database(path)
    ledger = Ledger(path)
    assert ledger.schema_version == len(MIGRATIONS) >= 2
    assert ledger.frame("fills")["order_id"].to_list() == ["f1"]
    ledger.record_order(_row("c1"))
    ledger.close()
    again = Ledger(path)  # reopening migrates nothing twice
    assert again.schema_version == len(MIGRATIONS) and len(again.orders()) == 1


def test_recorded_orders_keep_their_fields_and_follow_status_updates(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record_order(_row("c1", ts=1))
    ledger.update_order("c1", "open", "77")
    ledger.update_order("c1", "open")  # no exchange id: the known one is kept
    ledger.update_order("someone-else", "canceled")  # not Titan's: ignored
    [row] = ledger.orders()
    assert row == {**_row("c1", ts=1), "status": "open", "exchange_id": "77"}


def test_only_unfinished_orders_may_still_rest(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    statuses = ["new", "open", "unknown", "closed", "canceled", "expired", "rejected"]
    for ts, status in enumerate(statuses):
        ledger.record_order(_row(f"c-{status}", status, ts))
    unfinished = [row["status"] for row in ledger.orders(unfinished=True)]
    assert unfinished == ["new", "open", "unknown"]
    assert len(ledger.orders()) == len(statuses)


def test_resubmitting_a_client_id_updates_the_row_instead_of_failing(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record_order(_row("c1"))
    ledger.update_order("c1", "canceled", "5")
    ledger.record_order(_row("c1"))  # the same Titan order id decided again after a restart
    [row] = ledger.orders()
    assert row["status"] == "new" and row["exchange_id"] == "5"


def test_orders_survive_a_rollback_to_a_checkpoint(tmp_path: Path) -> None:
    """Unlike fills, submitted orders exist on the exchange whatever the checkpoint says."""
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record_order(_row("c1", ts=10_000))
    ledger.rollback_after(None, 0)
    assert [row["client_id"] for row in ledger.orders(unfinished=True)] == ["c1"]


def test_journal_rows_come_from_the_order_and_its_exchange_request(tmp_path: Path) -> None:
    order = Order(order_id(BTC, 60_000, 0), BTC, 60_000, "buy", 0.0123, "limit", 39_999.5)
    request = OrderRequest(BTC, "limit", "buy", 0.0123, 39_999.5, "titan-BTC_USDT-60000-0")
    ledger = Ledger(tmp_path / "ledger.db")
    journal: OrderJournal = ledger  # the ledger is the broker's journal
    journal.record_order(journal_row(order, request))
    assert ledger.orders() == [
        {
            "client_id": "titan-BTC_USDT-60000-0",
            "order_id": order.id,
            "exchange_id": None,
            "symbol": BTC,
            "side": "buy",
            "type": "limit",
            "amount": 0.0123,
            "price": 39_999.5,
            "status": "new",
            "ts": 60_000,
        }
    ]
