"""Checkpoints: atomic, checksummed, last K kept, corrupt newest falls back to previous."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog.testing

from titan.engine.checkpoint import Checkpointer, CheckpointError, verify


def writer(payload: dict[str, int]) -> object:
    def write(directory: Path) -> None:
        (directory / "state.json").write_text(json.dumps(payload))
        (directory / "sub").mkdir()
        (directory / "sub" / "blob.bin").write_bytes(bytes(range(256)))

    return write


def read(directory: Path) -> dict[str, int]:
    return dict(json.loads((directory / "state.json").read_text()))


def test_save_then_load_returns_newest(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, keep=3)
    for step in (10, 20, 30):
        ckpt.save(step, writer({"step": step}))  # type: ignore[arg-type]
    assert ckpt.load(read) == (30, {"step": 30})


def test_only_last_k_are_kept_and_no_temp_dirs_remain(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, keep=2)
    for step in range(5):
        ckpt.save(step, writer({"step": step}))  # type: ignore[arg-type]
    assert [p.name for p in ckpt.checkpoints()] == ["ckpt-000000000004", "ckpt-000000000003"]
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("damage", ["flip_byte", "delete_file", "break_manifest"])
def test_corrupt_newest_falls_back_to_previous_with_error_event(
    tmp_path: Path, damage: str
) -> None:
    ckpt = Checkpointer(tmp_path, keep=3)
    ckpt.save(1, writer({"step": 1}))  # type: ignore[arg-type]
    newest = ckpt.save(2, writer({"step": 2}))  # type: ignore[arg-type]
    if damage == "flip_byte":
        blob = newest / "sub" / "blob.bin"
        blob.write_bytes(b"\x00" + blob.read_bytes()[1:] if blob.read_bytes()[0] else b"\x01")
    elif damage == "delete_file":
        (newest / "state.json").unlink()
    else:
        (newest / "manifest.json").write_text("{not json")
    with structlog.testing.capture_logs() as events:
        assert ckpt.load(read) == (1, {"step": 1})
    assert [e["event"] for e in events if e["log_level"] == "error"] == ["checkpoint_corrupt"]


def test_reader_failure_also_falls_back(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, writer({"step": 1}))  # type: ignore[arg-type]
    ckpt.save(2, writer({"step": 2}))  # type: ignore[arg-type]

    def picky(directory: Path) -> dict[str, int]:
        state = read(directory)
        if state["step"] == 2:
            raise ValueError("incompatible")
        return state

    assert ckpt.load(picky) == (1, {"step": 1})


def test_no_checkpoint_loads_none(tmp_path: Path) -> None:
    assert Checkpointer(tmp_path / "none").load(read) is None


def test_verify_rejects_tampering(tmp_path: Path) -> None:
    path = Checkpointer(tmp_path).save(7, writer({"step": 7}))  # type: ignore[arg-type]
    assert verify(path) == 7
    (path / "state.json").write_text('{"step": 8}')
    with pytest.raises(CheckpointError, match="checksum"):
        verify(path)
