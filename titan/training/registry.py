"""The model registry on disk: versioned, checksummed, atomically written checkpoints.

Layout: ``<root>/<model>/ckpt-<version:012d>/`` holding

- ``state.pt``: ``torch.save(model.state_dict())`` (tensors and plain data only, read
  back with ``torch.load(weights_only=True)``: no pickled code runs on load);
- ``meta.json``: model name, version, creation time (ms, from the caller's clock),
  code version (``git describe``), the model's config, the training data range
  (exchange, symbols, timeframe, first/last candle), metrics on its held-out data and
  the parameter count;
- ``manifest.json``: sha256 of both (`titan.engine.checkpoint`).

A version directory is built in a temporary directory, fsync'd and renamed into place
(so a crash leaves the old set or the new one) and the oldest beyond ``keep`` are
pruned. Versions increase by one per save under a file lock, so the CLI and the daemon
may save concurrently. `load_latest` loads the newest version that verifies *and* loads
into the given model; a corrupt or incompatible one is skipped with an error event.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import torch

from titan.engine.checkpoint import Checkpointer, verify
from titan.models.base import BaseModel

log = structlog.get_logger(__name__)
STATE, META = "state.pt", "meta.json"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Checkpoint:
    model: str
    version: int
    path: Path
    meta: dict[str, Any]


def code_version(repo: Path = REPO_ROOT) -> str:
    """``git describe --always --dirty`` of the source tree, else the package version."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        try:
            return "titan-daemon " + importlib.metadata.version("titan-daemon")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


class ModelRegistry:
    def __init__(self, root: Path, keep: int = 5) -> None:
        self.root = Path(root)
        self.keep = keep

    def _store(self, name: str) -> Checkpointer:
        return Checkpointer(self.root / name, self.keep)

    def versions(self, name: str) -> list[int]:
        """Stored versions of `name`, newest first (unverified)."""
        return [int(p.name.split("-")[1]) for p in self._store(name).checkpoints()]

    def save(self, model: BaseModel, meta: Mapping[str, Any], created_ms: int) -> Checkpoint:
        """Write the model's state as the next version of ``model.name``."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            version = max(self.versions(model.name), default=0) + 1
            full = {
                "model": model.name,
                "version": version,
                "created_ms": created_ms,
                "code_version": code_version(),
                "parameters": model.parameter_count(),
                **meta,
            }
            state = model.state_dict()

            def write(directory: Path) -> None:
                torch.save(state, directory / STATE)
                (directory / META).write_text(json.dumps(full, indent=1, default=str))

            path = self._store(model.name).save(version, write)
        log.info("model_registered", model=model.name, version=version, path=str(path))
        return Checkpoint(model.name, version, path, full)

    def load_latest(self, model: BaseModel) -> Checkpoint | None:
        """Load the newest valid version of ``model.name`` into `model`; None if none."""
        for path in self._store(model.name).checkpoints():
            try:
                version = verify(path)
                meta = json.loads((path / META).read_text())
                state = torch.load(path / STATE, map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except Exception as exc:
                log.error(
                    "model_checkpoint_invalid",
                    model=model.name,
                    path=str(path),
                    error=f"{type(exc).__name__}: {exc}",
                )
                continue
            log.info("model_loaded", model=model.name, version=version, path=str(path))
            return Checkpoint(model.name, version, path, meta)
        return None

    def latest_meta(self, name: str) -> dict[str, Any] | None:
        """meta.json of the newest version that verifies (without loading weights)."""
        for path in self._store(name).checkpoints():
            try:
                verify(path)
                return dict(json.loads((path / META).read_text()))
            except Exception:
                continue
        return None
