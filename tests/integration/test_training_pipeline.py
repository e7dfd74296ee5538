"""Walk-forward training: purged chronological folds, scoring, fusion replay, report, CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import SAMPLE_DIR
from tests.unit.models.neural.fixtures import STEP_MS, TINY, bundled_samples
from titan.cli.common import app
from titan.cli.train import model_names
from titan.config.fusion import FusionConfig
from titan.config.training import WalkForwardConfig
from titan.features import WARMUP
from titan.models.dataset import purge_gap
from titan.training.fitting import ModelSpec
from titan.training.online import replay_fusion
from titan.training.report import LOSS_PNG, METRICS_JSON, REPORT_MD, write_training_report
from titan.training.walkforward import (
    AVERAGE,
    FUSION,
    MAJORITY,
    fold_splits,
    run_walk_forward,
)

LOOKBACK, HORIZON = 30, 1


@pytest.mark.parametrize("expanding", [False, True])
def test_folds_are_chronological_and_purged(expanding: bool) -> None:
    """No candle a training sample reads (its label) is read by the test window's first
    sample (its rows and the WARMUP candles its indicators look back)."""
    config = WalkForwardConfig(train_days=2, test_days=0.5, expanding=expanding, max_folds=None)
    splits = fold_splits(10_000, config, LOOKBACK, STEP_MS)
    assert purge_gap(HORIZON, LOOKBACK) == HORIZON + LOOKBACK + WARMUP == 80
    assert len(splits) == (10_000 - 2880 - 80) // 720 + 1
    for split in splits:
        assert split.test.start - split.train.stop == 80
        last_label_row = split.train.stop - 1 + HORIZON  # sample index == end row offset
        first_test_candle = split.test.start - (LOOKBACK - 1) - WARMUP
        assert last_label_row < first_test_candle
        assert split.train.start == 0 if expanding else len(split.train) == 2880
    starts = [s.test.start for s in splits]
    assert starts == sorted(starts) and all(b - a == 720 for a, b in itertools.pairwise(starts))


def test_max_folds_keeps_the_newest_folds() -> None:
    every = fold_splits(
        10_000, WalkForwardConfig(train_days=2, test_days=0.5, max_folds=None), 30, STEP_MS
    )
    newest = fold_splits(
        10_000, WalkForwardConfig(train_days=2, test_days=0.5, max_folds=2), 30, STEP_MS
    )
    assert newest == every[-2:]


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    data = bundled_samples(4000)
    config = WalkForwardConfig(train_days=1, test_days=0.25, max_folds=2)
    names = ("trend_vic", "cnn", "lstm", "attention", "neural_ensemble")
    return run_walk_forward(data, names, ModelSpec(TINY), config, STEP_MS)


def test_walk_forward_scores_every_model_and_the_baselines_on_the_same_rows(result) -> None:  # type: ignore[no-untyped-def]
    names = ("trend_vic", "cnn", "lstm", "attention", "neural_ensemble")
    assert list(result.competitors) == [FUSION, AVERAGE, MAJORITY, *names]
    n = result.outcome.shape[0]
    assert n == sum(f.prob.shape[0] for f in result.folds) and result.folds[0].prob.shape[0] == 360
    assert np.all(np.diff(result.ts) > 0)
    for prob in result.competitors.values():
        assert prob.shape == (n,) and np.all((prob >= 0) & (prob <= 1))
    for fold in result.folds:
        assert fold.train_ts[1] < fold.test_ts[0]
        assert all(fit.fitted for fit in fold.fits.values())
    scores = result.scores()
    assert len({s.n for s in scores.values()}) == 1  # same rows for everyone


def test_report_has_tables_metrics_and_loss_curves(result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    metrics = write_training_report(result, tmp_path, "test report")
    text = (tmp_path / REPORT_MD).read_text()
    for name in result.competitors:
        assert f"| {name} |" in text
    assert "Per test window: log_loss" in text and LOSS_PNG in text
    assert (tmp_path / LOSS_PNG).stat().st_size > 10_000
    stored = json.loads((tmp_path / METRICS_JSON).read_text())
    assert stored["overall"].keys() == metrics["overall"].keys() == result.competitors.keys()
    assert len(stored["folds"]) == 2 and "histories" in stored["folds"][0]["training"]["lstm"]


def test_batched_fusion_replay_equals_one_decision_at_a_time() -> None:
    """Batches between possible output changes give what a step-by-step engine gives."""
    rng = np.random.default_rng(0)
    n, horizon = 400, 2
    outcome = (rng.random(n) < 0.5).astype(float)
    outcome[rng.random(n) < 0.05] = np.nan
    prob = np.clip(0.5 + 0.1 * (outcome[:, None] - 0.5) + rng.normal(0, 0.1, (n, 3)), 0.01, 0.99)
    confidence = np.abs(2 * prob - 1)
    context = rng.normal(size=(n, 1))
    config = FusionConfig(
        device="cpu", min_samples=40, train_every=8, require_beating_average=False
    )
    batched, _ = replay_fusion(prob, confidence, outcome, context, ("return",), config, horizon)
    stepwise = np.array(
        [
            replay_fusion(
                prob[: i + 1],
                confidence[: i + 1],
                outcome[: i + 1],
                context[: i + 1],
                ("return",),
                config,
                horizon,
            )[0][-1]
            for i in range(0, n, 37)
        ]
    )
    np.testing.assert_array_equal(batched[::37], stepwise)


def test_model_names_map_ensemble_and_add_the_classic_models() -> None:
    assert model_names("lstm, ensemble", classic=False) == ("lstm", "neural_ensemble")
    assert model_names("cnn", classic=True) == (
        "trend_vic",
        "oscillator",
        "volume_metrix",
        "ml_classifier",
        "cnn",
    )


def test_titan_train_writes_a_report_and_registry_checkpoints(tmp_path: Path) -> None:
    import titan.cli.train  # noqa: F401  (registers the command)

    args = [
        "train",
        "--symbol", "BTC/USDT",
        "--store", str(SAMPLE_DIR),
        "--exchange", "binanceusdm",
        "--models", "cnn",
        "--no-classic",
        "--last-days", "3",
        "--train-days", "1",
        "--test-days", "0.25",
        "--max-folds", "1",
        "--max-steps", "5",
        "--registry", str(tmp_path / "registry"),
        "--out", str(tmp_path / "report"),
    ]  # fmt: skip
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "report" / REPORT_MD).is_file()
    meta = json.loads(next((tmp_path / "registry" / "cnn").glob("ckpt-*/meta.json")).read_text())
    assert meta["model"] == "cnn" and meta["version"] == 1
    assert meta["data"]["symbols"] == ["BTC/USDT"] and meta["parameters"] == 130_081
    assert "newest_test_window" in meta["metrics"] and meta["code_version"]
