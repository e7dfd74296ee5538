"""What a checkpoint holds and how it is written and read back.

Files in a checkpoint directory: `fusion/` (the fusion's own save), `engine.pkl`
(feature buffers, training history, base-model states, trader state, last processed
interval and last applied outcome seq). Reading builds a fresh fusion and plain data
first and only then is anything swapped into the running engine, so a checkpoint that
fails to read leaves the engine untouched for the fallback to the previous one.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titan.fusion import TransformerFusion

STATE_VERSION = 2


@dataclass
class EngineState:
    last_ts: int
    seq: int
    fusion: TransformerFusion
    buffers: dict[str, Any]
    history: dict[str, Any]
    models: list[dict[str, Any]]
    trader: dict[str, Any]
    models_fitted: bool


def write_state(directory: Path, state: EngineState) -> None:
    state.fusion.save(directory / "fusion")
    payload = {
        "version": STATE_VERSION,
        "last_ts": state.last_ts,
        "seq": state.seq,
        "buffers": state.buffers,
        "history": state.history,
        "models": state.models,
        "trader": state.trader,
        "models_fitted": state.models_fitted,
    }
    with (directory / "engine.pkl").open("wb") as handle:
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)


def state_reader(make_fusion: Callable[[], TransformerFusion]) -> Callable[[Path], EngineState]:
    """A checkpoint reader that loads into a fresh fusion from `make_fusion`."""

    def read(directory: Path) -> EngineState:
        with (directory / "engine.pkl").open("rb") as handle:
            payload = pickle.load(handle)  # our own checksummed checkpoint
        if payload.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported engine state version {payload.get('version')!r}")
        fusion = make_fusion()
        fusion.load(directory / "fusion")
        return EngineState(
            payload["last_ts"],
            payload["seq"],
            fusion,
            payload["buffers"],
            payload["history"],
            payload["models"],
            payload["trader"],
            payload["models_fitted"],
        )

    return read
