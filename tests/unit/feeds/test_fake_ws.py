"""The websocket stand-in and its manual clock: payloads, timing and every fault kind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from tests.unit.feeds.rig import MINUTE, StandIns, stand_ins
from titan.data.candle import Candle, Reason, Rejection
from titan.data.feeds.binance_ws import BinanceKlineParser
from titan.testing.fake_ws import WS_FAULTS, ManualClock

STREAMS = "/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"
PARSER = BinanceKlineParser({"BTCUSDT": "BTC/USDT", "ETHUSDT": "ETH/USDT"}, "1m")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[StandIns]:
    async with stand_ins(tmp_path, rows=200) as servers:
        yield servers


async def client(rig: StandIns, **kwargs: Any) -> ClientConnection:
    ws = await connect(rig.ws.url + STREAMS, ping_interval=None, **kwargs)
    await rig.ws.wait_for_connections(rig.ws.accepted)
    return ws


async def receive(ws: ClientConnection, count: int) -> list[Any]:
    async with asyncio.timeout(2):
        return [json.loads(await ws.recv()) for _ in range(count)]


def next_close(rig: StandIns) -> int:
    return (rig.clock.now_ms() // MINUTE + 1) * MINUTE


async def test_manual_clock_sleepers_wake_only_when_time_reaches_them() -> None:
    clock = ManualClock(1_000)
    early, late = (asyncio.ensure_future(clock.sleep_until(t)) for t in (2_000, 3_000))
    cancelled = asyncio.ensure_future(clock.sleep_until(2_500))
    await asyncio.sleep(0)
    cancelled.cancel()
    clock.advance_to(2_500)
    await asyncio.sleep(0)
    assert early.done() and not late.done() and clock.now_ms() == 2_500
    clock.advance(500)
    await asyncio.wait_for(late, 1)
    await clock.sleep_until(0)  # the past returns at once


async def test_updates_are_not_closed_and_the_close_carries_the_recorded_candle(
    rig: StandIns,
) -> None:
    ws = await client(rig)
    close = next_close(rig)
    await rig.ws.advance_to(close)  # one update tick (+40 s), then the close
    frames = await receive(ws, 4)
    closed = [f["data"]["k"]["x"] for f in frames]
    assert closed == [False, False, True, True]
    assert [f["stream"] for f in frames[2:]] == ["btcusdt@kline_1m", "ethusdt@kline_1m"]
    candle = PARSER.parse(json.dumps(frames[2]))
    row = rig.expected("BTC/USDT", close - MINUTE, close).row(0)
    assert candle == Candle("BTC/USDT", *row)
    assert frames[2]["data"]["E"] == close and rig.clock.now_ms() == close
    await ws.close()


async def test_duplicate_fault_sends_each_closing_kline_twice(rig: StandIns) -> None:
    ws = await client(rig)
    rig.ws.inject("duplicate")
    await rig.ws.advance_to(next_close(rig))
    frames = await receive(ws, 6)
    assert [f["data"]["k"]["x"] for f in frames] == [False, False, True, True, True, True]
    assert frames[2] == frames[3]
    await ws.close()


async def test_reorder_fault_delivers_a_closing_kline_after_the_next_one(rig: StandIns) -> None:
    ws = await client(rig)
    rig.ws.inject("reorder")
    first = next_close(rig)
    await rig.ws.advance_to(first + MINUTE)
    frames = await receive(ws, 9)  # 2 updates, ETH close, 4 updates, 2 closes, held BTC
    btc_closes = [
        f["data"]["k"]["t"] for f in frames if f["data"]["k"]["x"] and f["stream"].startswith("btc")
    ]
    assert btc_closes == [first, first - MINUTE]  # out of order on purpose
    await ws.close()


async def test_malformed_frames_are_all_rejected_by_the_parser(rig: StandIns) -> None:
    ws = await client(rig)
    rig.ws.inject("malformed", count=30)
    await rig.ws.advance(MINUTE // 3 - 1)  # the next tick only: 30 garbage + 2 updates
    async with asyncio.timeout(2):
        raw = [await ws.recv() for _ in range(32)]
    events = [PARSER.parse(frame) for frame in raw]
    garbage = [
        e for e in events if not (isinstance(e, Rejection) and e.reason is Reason.NOT_CLOSED)
    ]
    assert len(garbage) == 30 and all(isinstance(e, Rejection) for e in garbage)
    assert {e.reason for e in garbage if isinstance(e, Rejection)} >= {
        Reason.MALFORMED,
        Reason.UNKNOWN_SYMBOL,
        Reason.HIGH_BELOW_LOW,
    }
    await ws.close()


async def test_close_1001_and_abrupt_close_reach_the_client_as_such(rig: StandIns) -> None:
    polite = await client(rig)
    rig.ws.inject("close_1001")
    await rig.ws.advance(MINUTE // 3)
    with pytest.raises(ConnectionClosedOK) as closed:
        await asyncio.wait_for(polite.recv(), 2)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    rude = await client(rig)
    rig.ws.inject("abrupt_close")
    await rig.ws.advance(MINUTE // 3)
    with pytest.raises(ConnectionClosedError) as dropped:
        await asyncio.wait_for(rude.recv(), 2)
    assert dropped.value.rcvd is None


async def test_muted_connection_stops_answering_pings(rig: StandIns) -> None:
    ws = await client(rig)
    await asyncio.wait_for(await ws.ping(), 1)  # answered
    rig.ws.inject("mute_pings")
    await rig.ws.advance(MINUTE // 3)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(await ws.ping(), 0.3)
    await ws.close()


async def test_server_shutdown_event_is_sent_in_binance_format(rig: StandIns) -> None:
    ws = await client(rig)
    rig.ws.inject("server_shutdown")
    await rig.ws.advance(MINUTE // 3)
    frames = await receive(ws, 3)
    [shutdown] = [f for f in frames if f.get("e") == "serverShutdown"]
    assert shutdown == {"e": "serverShutdown", "E": frames[0]["data"]["E"]}  # sent at the tick
    await ws.close()


async def test_rejected_handshake_and_unknown_streams_get_http_errors(rig: StandIns) -> None:
    rig.ws.inject("reject_handshake")
    with pytest.raises(InvalidStatus, match="503"):
        await connect(rig.ws.url + STREAMS)
    with pytest.raises(InvalidStatus, match="400"):
        await connect(rig.ws.url + "/stream?streams=dogeusdt@kline_1m")
    ws = await client(rig)  # the next handshake succeeds
    await ws.close()


def test_unknown_fault_kind_is_refused(rig: StandIns) -> None:
    assert "mute_pings" in WS_FAULTS
    with pytest.raises(ValueError, match="unknown fault"):
        rig.ws.inject("meteor")
