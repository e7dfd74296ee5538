"""Checkpoint files for `TransformerFusion`: `fusion_model.pt` + `fusion_state.json`.

`fusion_model.pt` (torch, loaded with ``weights_only=True``) holds every tensor: network
weights, AdamW moments, the early-stopping best-weight snapshot, the sample buffer, the input
standardiser and the dropout/sampling generator state. `fusion_state.json` holds the
scalars (counters, losses, early-stopping state), the shape-defining settings and the
SHA-256 of the `.pt` file. Each file is written to a temporary name, fsync'd and renamed,
the JSON last: a crash mid-save leaves a checksum mismatch that `load` reports instead of
silently mixing two checkpoints. After `load`, outputs are bit-identical and training
continues along the same trajectory as the object that was saved (on the same device type:
a CPU checkpoint loaded on CUDA, or back, restores everything but the random stream).
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
import torch

from titan.atomic import atomic_write

if TYPE_CHECKING:
    from titan.fusion.fusion import TransformerFusion

MODEL_FILE = "fusion_model.pt"
STATE_FILE = "fusion_state.json"
FORMAT_VERSION = 1
SHAPE_KEYS = ("hidden_dim", "num_heads", "num_layers", "ffn_dim", "buffer_size")


class CheckpointError(ValueError):
    """A fusion checkpoint that cannot be restored into this object (with the reason)."""


def save(fusion: TransformerFusion, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    atomic_write(model_path, lambda handle: torch.save(_tensors(fusion), handle))
    state = _scalars(fusion)
    state["model_sha256"] = _sha256(model_path)
    text = json.dumps(state, indent=2, sort_keys=True, allow_nan=False)
    atomic_write(directory / STATE_FILE, lambda handle: handle.write(text.encode()))


def load(fusion: TransformerFusion, directory: Path) -> None:
    model_path, state_path = directory / MODEL_FILE, directory / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {state_path}: {exc}") from None
    _check_compatible(fusion, state)
    if _sha256(model_path) != state["model_sha256"]:
        raise CheckpointError(f"{model_path} does not match the checksum in {state_path}")
    try:
        tensors = torch.load(model_path, map_location=fusion.device, weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"cannot load {model_path}: {exc}") from None
    _restore_tensors(fusion, tensors, state)
    _restore_scalars(fusion, state)


def _tensors(fusion: TransformerFusion) -> dict[str, Any]:
    trainer = fusion.trainer
    return {
        "network": fusion.network.state_dict(),
        "optimizer": trainer.optimizer.state(),
        "best_weights": trainer.best_weights,
        "buffer": fusion.buffer.state(),
        "scaler": fusion.scaler.state(),
        "generator": trainer.generator.get_state(),
    }


def _restore_tensors(
    fusion: TransformerFusion, tensors: dict[str, Any], state: dict[str, Any]
) -> None:
    trainer = fusion.trainer
    fusion.network.load_state_dict(tensors["network"])
    trainer.optimizer.load(tensors["optimizer"])
    trainer.best_weights.copy_(tensors["best_weights"])
    fusion.scaler.load(tensors["scaler"])
    _restore_generator(trainer.generator, tensors["generator"].cpu(), fusion.config.seed)
    fusion.buffer.load(tensors["buffer"], total=state["samples_seen"])


def _restore_generator(generator: torch.Generator, state: torch.Tensor, seed: int) -> None:
    """Restore the dropout/sampling stream; a checkpoint from another device type (CPU vs
    CUDA generators differ) gets a fresh seeded stream instead, and says so."""
    try:
        generator.set_state(state)
    except RuntimeError:
        generator.manual_seed(seed)
        structlog.get_logger(__name__).warning(
            "fusion_generator_reseeded", reason="checkpoint from another device type"
        )


def _scalars(fusion: TransformerFusion) -> dict[str, Any]:
    trainer = fusion.trainer
    return {
        "format_version": FORMAT_VERSION,
        "n_models": fusion.n_models,
        "context_features": list(fusion.context_features),
        "extra_features": list(fusion.extra_features),
        "config": fusion.config.model_dump(),
        "samples_seen": fusion.buffer.total,
        "samples_rejected": fusion.samples_rejected,
        "samples_skipped": fusion.samples_skipped,
        "train_steps": trainer.steps,
        "train_loss": _finite_or_none(trainer.train_loss),
        "val_loss": _finite_or_none(trainer.val_loss),
        "average_val_loss": _finite_or_none(trainer.average_val_loss),
        "grad_norm": _finite_or_none(trainer.grad_norm),
        "early_stopping": trainer.stopper.state(),
        "fallback_reason": fusion.fallback_reason,
        "last_attention": [float(w) for w in fusion.last_attention],
    }


def _restore_scalars(fusion: TransformerFusion, state: dict[str, Any]) -> None:
    trainer = fusion.trainer
    fusion.samples_rejected = state["samples_rejected"]
    fusion.samples_skipped = state["samples_skipped"]
    trainer.steps = state["train_steps"]
    trainer.train_loss = _nan_if_none(state["train_loss"])
    trainer.val_loss = _nan_if_none(state["val_loss"])
    trainer.average_val_loss = _nan_if_none(state["average_val_loss"])
    trainer.grad_norm = _nan_if_none(state["grad_norm"])
    trainer.stopper.load(state["early_stopping"])
    fusion.fallback_reason = state["fallback_reason"]
    fusion.last_attention = np.array(state["last_attention"], dtype=np.float64)


def _check_compatible(fusion: TransformerFusion, state: dict[str, Any]) -> None:
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"unsupported fusion checkpoint format {state.get('format_version')!r}"
        )
    mine = {
        "n_models": fusion.n_models,
        "context_features": list(fusion.context_features),
        "extra_features": list(fusion.extra_features),
        **{key: getattr(fusion.config, key) for key in SHAPE_KEYS},
    }
    theirs = {key: state.get(key, state["config"].get(key)) for key in mine}
    diff = {key: (theirs[key], mine[key]) for key in mine if theirs[key] != mine[key]}
    if diff:
        raise CheckpointError(f"checkpoint does not fit this fusion (saved, current): {diff}")


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value
