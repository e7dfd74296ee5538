"""Shared test fixtures: data locations, thread limits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "backtests" / "data"
SHARED_DATA_DIR = Path(os.environ.get("TITAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# One thread everywhere in tests: on 2-core machines two threads ran up to 100x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _limit_torch_threads() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


_limit_torch_threads()


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults (a test may configure it)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled sample store (always present)."""
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """../shared/data, or skip the test when it is absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


def shared_file(name: str) -> Path:
    """A file in ../shared/data, or skip the calling test when it is absent."""
    path = SHARED_DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"shared data file not found: {path}")
    return path
