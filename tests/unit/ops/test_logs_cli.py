"""`titan logs`: filter the JSON stream by symbol, event and level; follow across rotation."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from titan.cli.common import app
from titan.cli.ops import LogFilter, follow, parse_line, render
from titan.ops.logging import RotatingFile

EVENTS: list[dict[str, Any]] = [
    {"event": "fill", "level": "info", "symbol": "BTC/USDT", "side": "buy"},
    {"event": "fill", "level": "info", "symbol": "ETH/USDT", "side": "sell"},
    {"event": "candle_rejected", "level": "warning", "symbol": "ETH/USDT", "reason": "nan"},
    {"event": "interval", "level": "info", "decisions": {"BTC/USDT": {}, "SOL/USDT": {}}},
    {"event": "decision", "level": "debug", "symbol": "BTC/USDT"},
    {"event": "mqtt_reconnecting", "level": "warning"},
]


def kept(wanted: LogFilter) -> list[int]:
    return [i for i, event in enumerate(EVENTS) if wanted.matches(event)]


def test_filter_by_symbol_includes_interval_summaries() -> None:
    assert kept(LogFilter(symbols=frozenset({"BTC/USDT"}))) == [0, 3, 4]
    assert kept(LogFilter(symbols=frozenset({"SOL/USDT"}))) == [3]


def test_filter_by_event_glob_and_minimum_level() -> None:
    assert kept(LogFilter(events=("fill",))) == [0, 1]
    assert kept(LogFilter(events=("mqtt_*", "candle_*"))) == [2, 5]
    assert kept(LogFilter(min_level=30)) == [2, 5]
    assert kept(LogFilter(frozenset({"ETH/USDT"}), ("fill",), 20)) == [1]


def test_parse_line_tolerates_journal_prefixes_and_skips_garbage() -> None:
    line = 'Nov 22 10:00:00 host titan[42]: {"event": "fill", "level": "info"}'
    assert parse_line(line) == {"event": "fill", "level": "info"}
    assert parse_line("plain text") is None and parse_line("{broken") is None
    assert parse_line("[1, 2]") is None


def test_render_is_one_readable_line() -> None:
    text = render({"timestamp": "T", "level": "info", "event": "fill", "symbol": "BTC/USDT"})
    assert text.startswith("T info") and 'symbol="BTC/USDT"' in text and "\n" not in text


def test_titan_logs_filters_a_file(tmp_path: Path) -> None:
    path = tmp_path / "titan.log"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\nnot json\n")
    result = CliRunner().invoke(app, ["logs", str(path), "--symbol", "ETH/USDT", "--level", "info"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["event"] for line in result.output.splitlines()] == [
        "fill",
        "candle_rejected",
    ]


def test_titan_logs_reads_stdin_and_rejects_unknown_levels() -> None:
    stdin = "\n".join(json.dumps(e) for e in EVENTS) + "\n"
    result = CliRunner().invoke(app, ["logs", "-", "--event", "mqtt_*", "--pretty"], input=stdin)
    assert result.exit_code == 0 and "mqtt_reconnecting" in result.output
    assert len(result.output.splitlines()) == 1
    assert CliRunner().invoke(app, ["logs", "-", "--level", "loud"], input="").exit_code != 0


def follow_while_writing(path: Path, write: Callable[[int], None], count: int) -> list[int]:
    """Lines `follow` yields while a thread calls `write(n)` for n in 1..count-1."""
    done = threading.Event()

    def writer() -> None:
        for n in range(1, count):
            write(n)
            time.sleep(0.02)
        time.sleep(0.05)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 10
    keep_going = lambda: not done.is_set() and time.monotonic() < deadline  # noqa: E731
    seen = [json.loads(line)["n"] for line in follow(path, 0.005, keep_going)]
    thread.join()
    return seen


def test_follow_survives_rotation(tmp_path: Path) -> None:
    path = tmp_path / "titan.log"
    file = RotatingFile(path, max_bytes=60, backups=5)
    file.write('{"n": 0}\n')
    file.flush()

    def write(n: int) -> None:
        file.write(json.dumps({"n": n, "pad": "x" * 10}) + "\n")
        file.flush()

    seen = follow_while_writing(path, write, 12)
    file.close()
    assert len(list(tmp_path.glob("titan.log.*"))) >= 2  # it did rotate
    assert seen == list(range(12))


def test_follow_waits_for_the_end_of_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "titan.log"
    path.write_text('{"n": 0}\n')
    handle = path.open("a")

    def write(n: int) -> None:
        line = json.dumps({"n": n}) + "\n"
        handle.write(line[:4])
        handle.flush()
        time.sleep(0.01)
        handle.write(line[4:])
        handle.flush()

    seen = follow_while_writing(path, write, 6)
    handle.close()
    assert seen == list(range(6))
