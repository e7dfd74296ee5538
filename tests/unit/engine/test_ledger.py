"""Ledger: predictions resolved exactly once, ordered seqs, atomic interval transactions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from titan.engine.ledger import MIGRATIONS, EquityRow, Ledger, Prediction, json_text


def prediction(symbol: str, ts: int) -> Prediction:
    return Prediction(
        symbol, ts, ts + 60_000, 100.0, 0.6, 0.55, 0.2, True, "buy", {"p": [0.6, 0.5]}, (0.7, 0.3)
    )


def test_schema_is_versioned_and_reopening_keeps_data(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with ledger.transaction():
        ledger.add_predictions([prediction("BTC", 0)])
    assert ledger.schema_version == len(MIGRATIONS)
    ledger.close()
    again = Ledger(tmp_path / "ledger.db")
    assert again.schema_version == len(MIGRATIONS) and len(again.pending()) == 1


def test_resolve_exactly_once_with_increasing_seq(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with ledger.transaction():
        first, second = ledger.add_predictions([prediction("BTC", 0), prediction("ETH", 0)])
    with ledger.transaction():
        assert ledger.resolve(first, "UP", 101.0) == 1
        assert ledger.resolve(second, "TIE", 100.0) == 2
    with pytest.raises(ValueError, match="already resolved"), ledger.transaction():
        ledger.resolve(first, "DOWN", 99.0)
    assert [(r.seq, r.symbol, r.outcome) for r in ledger.resolutions_after(0)] == [
        (1, "BTC", "UP"),
        (2, "ETH", "TIE"),
    ]
    assert [r.seq for r in ledger.resolutions_after(1)] == [2]
    assert ledger.pending() == []


def test_resolutions_written_with_their_predictions_equal_separate_updates(
    tmp_path: Path,
) -> None:
    """Resolving in `add_predictions` (new rows inline, older ones updated) stores what
    inserting and then `resolve_many` store, seqs in the order given."""
    ledgers = [Ledger(tmp_path / "a.db"), Ledger(tmp_path / "b.db")]
    for ledger in ledgers:
        with ledger.transaction():
            ledger.add_predictions([prediction("BTC", 0), prediction("ETH", 0)])
    batch = [prediction("BTC", 60_000), prediction("ETH", 60_000), prediction("BTC", 120_000)]
    resolutions: list[Any] = [(3, "UP", 101.0), (1, "DOWN", 99.0), (4, "TIE", 100.0)]
    separate, together = ledgers
    with separate.transaction():
        separate.add_predictions(batch)
        separate.resolve_many(resolutions)
    with together.transaction():
        assert together.next_id == 3
        assert together.add_predictions(batch, resolutions) == [3, 4, 5]
    assert together.frame("predictions").equals(separate.frame("predictions"))
    assert [r.seq for r in together.resolutions_after(0)] == [1, 2, 3]
    assert [p.id for p in together.pending()] == [2, 5]


@pytest.mark.parametrize("twice", [[(3, "UP", 1.0), (3, "DOWN", 1.0)], [(1, "UP", 1.0)] * 2])
def test_resolving_a_prediction_twice_in_one_call_is_refused(tmp_path: Path, twice: Any) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with ledger.transaction():
        ledger.add_predictions([prediction("BTC", 0), prediction("ETH", 0)])
    with pytest.raises(ValueError, match="twice"), ledger.transaction():
        ledger.add_predictions([prediction("BTC", 60_000)], twice)
    assert len(ledger.pending()) == 2


def test_resolving_an_unknown_prediction_is_refused(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with pytest.raises(ValueError, match="unknown"), ledger.transaction():
        ledger.add_predictions([prediction("BTC", 0)], [(7, "UP", 1.0)])
    assert ledger.pending() == [] and ledger.next_id == 1


def test_duplicate_prediction_is_refused(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with ledger.transaction():
        ledger.add_predictions([prediction("BTC", 0)])
    with pytest.raises(sqlite3.IntegrityError), ledger.transaction():
        ledger.add_predictions([prediction("BTC", 0)])


def test_failed_transaction_rolls_back_everything(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.add_predictions([prediction("BTC", 0)])
        ledger.set_progress({"BTC": 0})
        raise RuntimeError("crash mid-interval")
    assert ledger.pending() == [] and ledger.progress() == {}


def test_seq_continues_after_reopen(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with ledger.transaction():
        ids = ledger.add_predictions([prediction("BTC", 0), prediction("BTC", 60_000)])
        ledger.resolve(ids[0], "DOWN", 99.0)
    ledger.close()
    again = Ledger(tmp_path / "ledger.db")
    with again.transaction():
        assert again.resolve(ids[1], "UP", 101.0) == 2


def test_frames_for_reports(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with ledger.transaction():
        ledger.add_predictions([prediction("BTC", 0)])
        ledger.add_fills(
            [
                {
                    "order_id": "o1",
                    "symbol": "BTC",
                    "ts": 0,
                    "side": "buy",
                    "quantity": 1.0,
                    "price": 100.0,
                    "fee": 0.04,
                }
            ]
        )
        ledger.add_equity([EquityRow(0, 10_000.0, 9_900.0, 0.01, {"positions": {}})])
    assert ledger.frame("predictions").height == 1
    assert ledger.frame("fills")["order_id"].to_list() == ["o1"]
    with pytest.raises(ValueError, match="unknown table"):
        ledger.frame("sqlite_master")


def test_rollback_after_restores_the_checkpointed_view(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    with ledger.transaction():
        a, b, c = ledger.add_predictions([prediction("BTC", t) for t in (0, 60_000, 120_000)])
        ledger.resolve(a, "UP", 101.0)  # seq 1, before the checkpoint
        ledger.resolve(b, "DOWN", 99.0)  # seq 2, after it
    ledger.rollback_after(60_000, 1)
    assert [p.id for p in ledger.pending()] == [b]  # c deleted, b pending again
    with ledger.transaction():
        assert ledger.resolve(b, "UP", 100.5) == 2  # seqs continue where the checkpoint was
        assert ledger.add_predictions([prediction("BTC", 120_000)]) == [c]
    ledger.rollback_after(None, 0)
    assert ledger.frame("predictions").height == 0


@pytest.mark.parametrize(
    "value",
    [
        {"p": (0.1, 1 / 3), "c": [5e-324, -0.0, 1e16], "x": (1.7976931348623157e308, 1e-5)},
        {"p": [0.5, float("nan")], "c": [float("inf"), float("-inf")], "x": []},
        (0.25, np.float64(0.75)),
        {"none": None, "n": 3, "s": "é"},
    ],
)
def test_json_text_reads_back_as_json_dumps_does(value: Any) -> None:
    # repr tells every float apart (-0.0, NaN, the last bit)
    assert repr(json.loads(json_text(value))) == repr(json.loads(json.dumps(value)))


def test_stored_inputs_and_attention_read_back_exactly(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    inputs = {"p": [0.1, 2 / 3], "c": [1e-7, float("nan")], "x": [-0.0]}
    stored = Prediction("BTC", 0, 60_000, 1.0, 0.5, 0.5, 0.0, True, "flat", inputs, (1 / 3, 0.2))
    with ledger.transaction():
        ledger.add_predictions([stored, stored._replace(ts=60_000, attention=None)])
    assert [repr(p.inputs) for p in ledger.pending()] == [repr(inputs)] * 2
    attention = ledger.frame("predictions")["attention"].to_list()
    assert json.loads(attention[0]) == [1 / 3, 0.2] and attention[1] is None


def test_a_version_2_ledger_drops_the_unused_pending_index_keeping_its_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; {MIGRATIONS[1]}; PRAGMA user_version = 2; COMMIT;")
    db.execute(
        "INSERT INTO predictions (id, symbol, ts, target_ts, close, prob_up, baseline,"
        " confidence, fused, action, inputs) VALUES (7, 'BTC', 0, 60000, 1.0, 0.5, 0.5, 0.0,"
        " 0, 'flat', ?)",
        ('{"p": [0.5], "c": [0.0], "x": []}',),
    )
    db.close()
    ledger = Ledger(path)
    names = {name for (name,) in ledger.db.execute("SELECT name FROM sqlite_master")}
    assert ledger.schema_version == len(MIGRATIONS) >= 3
    assert "predictions_pending" not in names
    assert [(p.id, dict(p.inputs)) for p in ledger.pending()] == [
        (7, {"p": [0.5], "c": [0.0], "x": []})
    ]
    with ledger.transaction():
        assert ledger.add_predictions([prediction("BTC", 60_000)]) == [8]
