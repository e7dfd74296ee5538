"""Every neural model (LSTM, CNN, attention, their ensemble, MultiScaleCNN) trained for
real (small budget, full-size networks) on shared BTC 1m.

About a minute on one CPU thread. The bound checked is honesty, not skill: on the next
held-out candles a calibrated model must stay near the coin-flip log loss (ln 2 = 0.6931)
instead of drifting away from it, and answer with non-constant probabilities.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_file
from titan.config.training import NeuralConfig, TrainerConfig
from titan.evaluation.metrics import forecast_report
from titan.models.dataset import purge_gap
from titan.models.neural.meta import NeuralEnsemble
from titan.models.neural.model import NeuralModel
from titan.models.neural.registry import build_neural
from titan.training.data import load_series, samples

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
BUDGET = NeuralConfig(trainer=TrainerConfig(max_steps=100, eval_every=50, batch_size=64))
N_TRAIN, N_TEST = 9000, 2000
PURGE = purge_gap(1, BUDGET.lookback)  # horizon + window + feature warm-up (80)


def test_each_neural_model_trains_on_real_btc_and_stays_calibrated() -> None:
    path = shared_file("binance_BTCUSDT_1m.parquet")
    series = load_series(path.parent, "binance", "BTC/USDT", "1m", last=N_TRAIN + N_TEST + 200)
    data = samples(series, BUDGET.lookback)
    train = data.subset(slice(0, N_TRAIN))
    test = data.subset(slice(N_TRAIN + PURGE, N_TRAIN + PURGE + N_TEST))
    bases: list[NeuralModel] = []
    for name in ("lstm", "cnn", "attention"):
        model = build_neural(name, BUDGET, purge=PURGE)
        model.fit_returns(train.windows, train.returns)
        bases.append(model)
    ensemble = build_neural("neural_ensemble", BUDGET, purge=PURGE)
    assert isinstance(ensemble, NeuralEnsemble)
    ensemble.fit_from_bases(bases, train.windows, train.labels, train.returns)
    multiscale = build_neural("multiscale_cnn", BUDGET, purge=PURGE)
    multiscale.fit_returns(train.windows, train.returns)
    for model in [*bases, ensemble, multiscale]:
        assert model.is_fitted, model.name
        history = next(iter(model.histories.values()))
        assert history.steps > 0 and np.isfinite(history.best_val)
        out = model.predict(test.windows)
        report = forecast_report(out.prob_up, test.labels)
        assert report.n_missing == 0 and report.n > 1800
        assert report.log_loss < 0.70, (model.name, report)
        assert out.prob_up.std() > 1e-4, model.name
        assert np.isfinite(out.extras["return"]).all()
