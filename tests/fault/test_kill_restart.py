"""kill -9 at random points, restart each time: the ledger equals an uninterrupted run's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.integration.engine_setup import SMALL, assert_same_tables
from titan.engine.checkpoint import Checkpointer
from titan.engine.ledger import Ledger

pytestmark = pytest.mark.slow


def write_config(path: Path, state_dir: Path) -> Path:
    lines = ['mode = "paper"', "[runtime]", f'state_dir = "{state_dir}"']
    sections: dict[str, list[str]] = {}
    for key, value in {**SMALL, "engine.report": "false", "logging.level": "info"}.items():
        section, _, leaf = key.rpartition(".")
        literal = (
            value
            if value.replace(".", "").isdigit() or value in ("true", "false")
            else f'"{value}"'
        )
        sections.setdefault(section, []).append(f"{leaf} = {literal}")
    for section, entries in sections.items():
        lines += [f"[{section}]", *entries]
    path.write_text("\n".join(lines) + "\n")
    return path


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "titan", "run", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)  # fmt: skip


def wait_for_checkpoint(log: Path, seen: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if log.read_text().count("checkpoint_written") > seen:
            return
        time.sleep(0.05)


def run_to_end(config: Path, log: Path) -> None:
    assert start(config, log).wait(timeout=300) == 0, log.read_text()[-3000:]


def ledger_tables(state_dir: Path) -> dict[str, object]:
    ledger = Ledger(state_dir / "ledger.db")
    try:
        return {
            name: ledger.frame(name) for name in ("predictions", "fills", "equity", "fusion_stats")
        }
    finally:
        ledger.close()


def final_fusion_weights(state_dir: Path) -> dict[str, torch.Tensor]:
    newest = Checkpointer(state_dir / "checkpoints").checkpoints()[0]
    tensors = torch.load(newest / "fusion" / "fusion_model.pt", weights_only=False)
    return dict(tensors["network"])


def test_kill_minus_nine_then_restart_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    reference = tmp_path / "reference"
    run_to_end(write_config(tmp_path / "reference.toml", reference), tmp_path / "reference.log")

    faulty = tmp_path / "faulty"
    config = write_config(tmp_path / "faulty.toml", faulty)
    log = tmp_path / "faulty.log"
    rng = random.Random(7)
    kills = 0
    for _ in range(4):
        checkpoints = log.read_text().count("checkpoint_written") if log.exists() else 0
        process = start(config, log)
        # Kill at a random moment after the run has written a new checkpoint (so that the
        # restart resumes from it) and before the next one: mid-interval, mid-write.
        wait_for_checkpoint(log, checkpoints, process)
        time.sleep(rng.uniform(0.0, 1.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
    run_to_end(config, log)
    assert kills >= 2, "the run finished before it could be killed: make it longer"
    assert log.read_text().count("engine_resumed") >= 2

    assert_same_tables(ledger_tables(faulty), ledger_tables(reference))  # type: ignore[arg-type]
    expected, got = final_fusion_weights(reference), final_fusion_weights(faulty)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
