"""Atomic, checksummed checkpoints: keep the last K, fall back past corrupt ones.

A checkpoint is a directory `ckpt-<step>` holding whatever files the writer puts there
plus `manifest.json` (sha256 of every file). It is built in a temporary directory,
every file fsync'd, then renamed into place, so a crash leaves either the old set or
the new one, never a half-written checkpoint. Loading verifies the manifest and falls
back to the previous checkpoint (with a `checkpoint_corrupt` error event) when the
newest does not verify or its reader fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog

from titan.atomic import fsync_dir, fsync_file

log = structlog.get_logger(__name__)
T = TypeVar("T")
MANIFEST = "manifest.json"


class CheckpointError(RuntimeError):
    """A checkpoint failed verification."""


class Checkpointer:
    def __init__(self, root: Path, keep: int = 3) -> None:
        self.root = Path(root)
        self.keep = max(1, keep)

    def save(self, step: int, writer: Callable[[Path], None]) -> Path:
        """Write checkpoint `step` atomically with `writer(tmp_dir)`; prune old ones."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"ckpt-{step:012d}"
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        writer(tmp)
        _write_manifest(tmp, step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(self.root)
        self._prune()
        log.info("checkpoint_written", step=step, path=str(final))
        return final

    def checkpoints(self) -> list[Path]:
        """Existing checkpoint directories, newest first."""
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.glob("ckpt-*") if p.is_dir()), reverse=True)

    def load(self, reader: Callable[[Path], T]) -> tuple[int, T] | None:
        """(step, reader(dir)) of the newest checkpoint that verifies and reads; None if none."""
        for path in self.checkpoints():
            try:
                step = verify(path)
                return step, reader(path)
            except Exception as exc:
                log.error(
                    "checkpoint_corrupt", path=str(path), error=f"{type(exc).__name__}: {exc}"
                )
        return None

    def _prune(self) -> None:
        for old in self.checkpoints()[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)
        for tmp in self.root.glob(".tmp-ckpt-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def verify(path: Path) -> int:
    """Check every file against the manifest; the checkpoint's step, or CheckpointError."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"unreadable manifest: {exc}") from None
    files: dict[str, str] = manifest.get("files", {})
    for name, digest in files.items():
        target = path / name
        if not target.is_file() or _sha256(target) != digest:
            raise CheckpointError(f"checksum mismatch: {name}")
    return int(manifest["step"])


def _write_manifest(directory: Path, step: int) -> None:
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        fsync_file(path)
        files[str(path.relative_to(directory))] = _sha256(path)
    manifest = directory / MANIFEST
    manifest.write_text(json.dumps({"step": step, "files": files}, indent=1))
    fsync_file(manifest)
    for sub in {p.parent for p in directory.rglob("*")} | {directory}:
        fsync_dir(sub)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
