"""The systemd notify protocol (sd_notify(3)), without libsystemd.

Under `Type=notify` systemd passes `NOTIFY_SOCKET` (a path, or `@name` for the abstract
namespace) and, with `WatchdogSec=`, `WATCHDOG_USEC` (and `WATCHDOG_PID`). The daemon
sends newline-separated `KEY=VALUE` datagrams: `READY=1` once it serves, `WATCHDOG=1`
at least every `WATCHDOG_USEC / 2`, `STOPPING=1` when it begins to shut down, and
`STATUS=...` free text shown by `systemctl status`. Without `NOTIFY_SOCKET` every call
is a no-op, so the same code runs outside systemd. Send failures are logged, never raised.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends sd_notify messages to `NOTIFY_SOCKET` (read from `env`, default os.environ)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_s = _watchdog_seconds(env)
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send `KEY=VALUE` lines (keys upper-cased); True when the datagram went out."""
        if self.address is None:
            return False
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.warning("sd_notify_failed", error=f"{type(exc).__name__}: {exc}")
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify(READY=1, **_status(status))

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def stopping(self, status: str | None = None) -> bool:
        return self.notify(STOPPING=1, **_status(status))

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)


def _status(text: str | None) -> dict[str, str]:
    return {} if text is None else {"STATUS": text.replace("\n", " ")}


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and other forms are not supported here


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """The watchdog timeout, when it is meant for this process (WATCHDOG_PID, if set)."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


async def watchdog_loop(
    notifier: Notifier,
    healthy: Callable[[], bool],
    status: Callable[[], str] | None = None,
    period_s: float | None = None,
) -> None:
    """Ping `WATCHDOG=1` (with `STATUS=status()`) every half watchdog period while
    `healthy()`; runs until cancelled.

    Running on the event loop, a blocked loop stops the pings and systemd restarts the
    daemon; `healthy()` can withhold them for other reasons (e.g. a stalled engine).
    """
    period = period_s or (notifier.watchdog_s / 2 if notifier.watchdog_s else None)
    if period is None or not notifier.enabled:
        return
    missed = False
    while True:
        if healthy():
            notifier.notify(WATCHDOG=1, **_status(None if status is None else status()))
            missed = False
        elif not missed:
            log.error("watchdog_withheld", reason="engine unhealthy")
            missed = True
        await asyncio.sleep(period)
