"""How the outside world watches and steers the engine.

`EngineObserver`: called synchronously on the engine's task after each ledger commit;
implementations must be cheap and never block (e.g. put on a bounded queue that a
publisher task drains). `EngineControl`: what operators may ask of a running engine
(MQTT commands, the kill-switch file); the engine applies requests at interval
boundaries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from titan.engine.ensemble import Decision
from titan.engine.ledger import EquityRow
from titan.trading.types import Fill


class EngineObserver(Protocol):
    def on_decisions(self, ts: int, decisions: Sequence[Decision]) -> None: ...

    def on_fills(self, fills: Sequence[Fill]) -> None: ...

    def on_interval(self, ts: int, equity: EquityRow) -> None: ...

    def on_stats(self, ts: int, stats: Mapping[str, Any]) -> None: ...

    def on_status(self, status: str) -> None: ...


class EngineControl(Protocol):
    def pause_trading(self) -> None: ...

    def resume_trading(self) -> None: ...

    async def kill(self, reason: str) -> None: ...

    def request_checkpoint(self) -> None: ...

    def request_stop(self) -> None: ...


class Observers:
    """Fan-out to every registered observer; one failing observer never stops the engine."""

    def __init__(self) -> None:
        self._observers: list[EngineObserver] = []

    def add(self, observer: EngineObserver) -> None:
        self._observers.append(observer)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def emit(self, method: str, *args: Any) -> None:
        import structlog

        for observer in self._observers:
            try:
                getattr(observer, method)(*args)
            except Exception as exc:  # an observer's bug must not stop trading
                structlog.get_logger(__name__).error(
                    "observer_failed",
                    observer=type(observer).__name__,
                    method=method,
                    error=f"{type(exc).__name__}: {exc}",
                )
