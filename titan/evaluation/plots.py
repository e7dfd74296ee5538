"""PNG plots for run reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

_HOUR_MS = 3_600_000


def _hours(ts: np.ndarray) -> np.ndarray:
    return (ts - ts[0]) / _HOUR_MS if len(ts) else ts


def equity_plot(equity: pl.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ts = equity["ts"].to_numpy()
    ax.plot(_hours(ts), equity["equity"].to_numpy(), lw=1)
    ax.set(xlabel="hours since start", ylabel="equity (quote)", title="Equity (net of fees)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def attention_plot(
    predictions: pl.DataFrame, names: Sequence[str], path: Path, window: int = 500
) -> None:
    """Rolling mean of the fusion's attention weight per model over time."""
    fused = predictions.filter(pl.col("attention").is_not_null()).sort("ts")
    fig, ax = plt.subplots(figsize=(9, 3.5))
    if fused.height:
        weights = np.array([json.loads(a) for a in fused["attention"].to_list()], dtype=np.float64)
        hours = _hours(fused["ts"].to_numpy())
        kernel = np.ones(min(window, len(weights))) / min(window, len(weights))
        for j, name in enumerate(names):
            smooth = np.convolve(weights[:, j], kernel, mode="valid")
            ax.plot(hours[len(hours) - len(smooth) :], smooth, lw=1, label=name)
        ax.legend(loc="upper right", fontsize=8)
    ax.set(
        xlabel="hours since start", ylabel="attention weight", title="Fusion attention per model"
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def training_plot(history: dict[str, np.ndarray], path: Path) -> None:
    fig, (loss_ax, lr_ax) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    if history:
        hours = _hours(history["ts"])
        loss_ax.plot(hours, history["train_loss"], lw=1, label="train loss")
        loss_ax.plot(hours, history["val_loss"], lw=1, label="validation loss")
        overfit = history["is_overfitting"] > 0
        if overfit.any():
            loss_ax.scatter(
                hours[overfit], history["val_loss"][overfit], s=6, c="red", label="paused"
            )
        loss_ax.legend(fontsize=8)
        lr_ax.plot(hours, history["current_lr"], lw=1)
    loss_ax.set(ylabel="BCE loss", title="Fusion online training")
    lr_ax.set(xlabel="hours since start", ylabel="learning rate")
    for ax in (loss_ax, lr_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
