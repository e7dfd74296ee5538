"""Log streams: JSON lines, size rotation, sampling, runtime level changes, redaction."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from titan.ops.logging import (
    EventSampler,
    RotatingFile,
    add_event_listener,
    configure_logging,
    current_log_level,
    register_secret,
    remove_event_listener,
    set_log_level,
)

module_log = structlog.get_logger("titan.test.module")  # like every module-level logger


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_events_are_json_lines_with_level_timestamp_and_fields() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    module_log.info("fill", symbol="BTC/USDT", quantity=0.5, loss=float("nan"))
    (event,) = lines(stream)
    assert "NaN" not in stream.getvalue() and event["loss"] is None  # strict JSON for jq
    assert (event["event"], event["level"], event["symbol"], event["quantity"]) == (
        "fill",
        "info",
        "BTC/USDT",
        0.5,
    )
    assert event["timestamp"].endswith("Z")


def test_rotating_file_rotates_at_size_and_keeps_backups(tmp_path: Path) -> None:
    path = tmp_path / "titan.log"
    file = RotatingFile(path, max_bytes=100, backups=2)
    for i in range(12):
        file.write(f"{i:02d}" + "x" * 37 + "\n")  # 40 bytes: two lines per file
    file.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["titan.log", "titan.log.1", "titan.log.2"]  # older ones dropped
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    newest_first = [path, path.with_name("titan.log.1"), path.with_name("titan.log.2")]
    numbers = [int(line[:2]) for p in reversed(newest_first) for line in p.read_text().splitlines()]
    assert numbers == list(range(6, 12))  # order preserved across files, nothing duplicated


def test_configured_log_file_rotates_and_is_redacted(tmp_path: Path) -> None:
    stream = io.StringIO()
    register_secret("sk-live-0123456789")
    configure_logging("info", "json", stream, tmp_path / "titan.log", max_bytes=2_000, backups=3)
    for i in range(60):
        module_log.info("order", symbol="BTC/USDT", i=i, note="key sk-live-0123456789 used")
    files = sorted(tmp_path.glob("titan.log*"))
    assert len(files) == 4  # titan.log + 3 backups
    text = "".join(p.read_text() for p in files) + stream.getvalue()
    assert "sk-live-0123456789" not in text and "***" in text


def test_sampling_keeps_one_in_n_per_symbol_and_never_samples_warnings() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream, sample={"decision": 5, "candle_accepted": 0})
    for i in range(20):
        for symbol in ("BTC/USDT", "ETH/USDT"):
            module_log.debug("decision", symbol=symbol, i=i)
            module_log.debug("candle_accepted", symbol=symbol, i=i)
    for i in range(3):
        module_log.warning("decision", symbol="BTC/USDT", i=i)
    events = lines(stream)
    kept = [e for e in events if e["level"] == "debug"]
    assert [(e["symbol"], e["i"]) for e in kept if e["symbol"] == "BTC/USDT"] == [
        ("BTC/USDT", i) for i in (0, 5, 10, 15)
    ]
    assert len(kept) == 8 and all(e["sampled"] == 5 for e in kept)
    assert not [e for e in events if e["event"] == "candle_accepted"]
    assert len([e for e in events if e["level"] == "warning"]) == 3


def test_sampler_counts_are_bounded() -> None:
    sampler = EventSampler({"decision": 2})
    sampler.MAX_KEYS = 10
    for i in range(100):
        with contextlib.suppress(structlog.DropEvent):
            sampler(None, "debug", {"event": "decision", "symbol": f"S{i}"})
    assert len(sampler._counts) <= 10


def test_level_changes_at_runtime_for_module_level_loggers() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    module_log.debug("hidden")
    set_log_level("debug")
    module_log.debug("shown")
    assert current_log_level() == "debug"
    set_log_level("error")
    module_log.warning("hidden_again")
    module_log.error("shown_error")
    assert [e["event"] for e in lines(stream)] == ["shown", "shown_error"]


def test_listeners_see_events_before_sampling_and_a_failing_listener_is_harmless() -> None:
    stream = io.StringIO()
    seen: list[str] = []

    def listener(event: Mapping[str, Any]) -> None:
        seen.append(str(event["event"]))

    def broken(_event: Mapping[str, Any]) -> None:
        raise RuntimeError("bug")

    configure_logging("info", "json", stream, sample={"candle_rejected": 0})
    add_event_listener(broken)
    add_event_listener(listener)
    try:
        module_log.info("candle_rejected", reason="nan")
        module_log.info("fill")
    finally:
        remove_event_listener(listener)
        remove_event_listener(broken)
    assert seen == ["candle_rejected", "fill"]
    assert [e["event"] for e in lines(stream)] == ["fill"]
