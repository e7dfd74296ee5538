"""sd_notify against a fake NOTIFY_SOCKET: READY/WATCHDOG/STOPPING/STATUS datagrams."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from titan.ops.sdnotify import Notifier, watchdog_loop


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's notification socket."""
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2.0)
    yield server, str(path)
    server.close()


def received(server: socket.socket) -> list[str]:
    """Every datagram waiting on `server`."""
    messages = []
    server.setblocking(False)
    try:
        while True:
            messages.append(server.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        server.settimeout(2.0)
    return messages


def test_ready_watchdog_stopping_and_status_reach_the_socket(
    notify_socket: tuple[socket.socket, str],
) -> None:
    server, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("online")
    assert notifier.watchdog()
    assert notifier.status("2 intervals")
    assert notifier.stopping()
    assert received(server) == [
        "READY=1\nSTATUS=online",
        "WATCHDOG=1",
        "STATUS=2 intervals",
        "STOPPING=1",
    ]


def test_abstract_namespace_socket_is_supported() -> None:
    name = f"titan-test-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(b"\0" + name.encode())
    server.settimeout(2.0)
    try:
        assert Notifier({"NOTIFY_SOCKET": f"@{name}"}).ready()
        assert server.recv(4096) == b"READY=1"
    finally:
        server.close()


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog() and not notifier.stopping()


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.watchdog() is False


def test_watchdog_period_comes_from_watchdog_usec_for_this_pid_only() -> None:
    pid = str(os.getpid())
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_s == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}).watchdog_s == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_s is None
    assert Notifier({}).watchdog_s is None


async def test_watchdog_loop_pings_at_half_the_period_while_healthy(
    notify_socket: tuple[socket.socket, str],
) -> None:
    server, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})  # 0.1 s
    healthy = True
    task = asyncio.create_task(watchdog_loop(notifier, lambda: healthy))
    await asyncio.sleep(0.22)  # pings at 0, 0.05, ... 0.20
    pings = received(server)
    healthy = False
    await asyncio.sleep(0.2)
    task.cancel()
    assert 2 <= len(pings) <= 6 and set(pings) == {"WATCHDOG=1"}
    assert received(server) == []  # an unhealthy engine gets no pings: systemd restarts it


async def test_watchdog_loop_returns_at_once_without_a_watchdog() -> None:
    await asyncio.wait_for(watchdog_loop(Notifier({}), lambda: True), timeout=1.0)
