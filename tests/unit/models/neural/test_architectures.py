"""The networks of lstm-cnn-attention-ensemble.md: layer lists, parameter counts, APIs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from titan.models.neural.attention import AttentionModel, create_attention_model
from titan.models.neural.cnn import CNNModel, MultiScaleCNN, create_cnn_model
from titan.models.neural.ensemble import EnsembleModel, StackedEnsemble, create_ensemble_model
from titan.models.neural.layers import count_parameters
from titan.models.neural.lstm import LSTMEnsemble, LSTMModel, create_lstm_model

B, T, F = 4, 30, 40


def _x(batch: int = B, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, T, F, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ parameter counts


def test_lstm_has_the_documents_602625_parameters() -> None:
    """2-layer biLSTM(40->128) 569,344 + Linear(256->128) 32,896 + BN 256 + Linear 129."""
    model = LSTMModel()
    assert count_parameters(model.lstm) == 569_344
    assert model.count_parameters() == 602_625


def test_cnn_has_the_documents_130081_parameters() -> None:
    """'same' convolutions and MaxPool(2) after each block: 30 -> 15 -> 7 -> 3, fc_input 384."""
    model = CNNModel()
    assert model.fc_input == 128 * 3
    assert model.count_parameters() == 130_081


def test_attention_counts_learned_table_and_fixed_table_gives_the_documents_figure() -> None:
    """410,241 (document) = 414,081 (learned 1x30x128 table) - 3,840 (the table itself)."""
    learned, fixed = AttentionModel(positional="learned"), AttentionModel(positional="fixed")
    assert learned.count_parameters() == 414_081
    assert fixed.count_parameters() == 410_241
    assert learned.count_parameters() - fixed.count_parameters() == T * 128
    assert "positional" in dict(fixed.named_buffers())


def test_ensemble_has_the_documents_1145959_parameters_with_the_documents_attention() -> None:
    """602,625 + 130,081 + 410,241 + heads 3,012 (weight predictor 451, meta 2,561)."""
    ensemble = EnsembleModel(LSTMModel(), CNNModel(), AttentionModel(positional="fixed"))
    assert count_parameters(ensemble.weight_predictor) == 451
    assert count_parameters(ensemble.meta) == 2_561
    assert ensemble.head_parameter_count() == 3_012
    assert ensemble.count_parameters() == 1_145_959
    learned = EnsembleModel(LSTMModel(), CNNModel(), AttentionModel())
    assert learned.count_parameters() == 1_149_799


def test_multiscale_cnn_has_139681_parameters() -> None:
    """Branches of 'same' conv blocks (conv + BN) with kernels 3 / 5 / 7, fused 32 + 64 + 128.

    shallow 40->32 (k3): 3,872 + 64; medium 40->32->64 (k5): 6,496 + 10,432; deep
    40->32->64->128 (k7): 9,056 + 14,528 + 57,728; head 224->128 (+BN) 29,056, 128->64
    (+BN) 8,384, 64->1 65.
    """
    model = MultiScaleCNN()
    branches = [count_parameters(b) for b in (model.shallow, model.medium, model.deep)]
    assert branches == [3_936, 16_928, 81_312]
    assert count_parameters(model.head) == 37_505
    assert model.count_parameters() == 139_681


def test_lstm_ensemble_is_its_members_lstms() -> None:
    """Bagged LSTMs (differently seeded): members x 602,625, nothing shared or added."""
    assert LSTMEnsemble().count_parameters() == 3 * 602_625 == 1_807_875
    assert LSTMEnsemble(members=2, hidden_size=16).count_parameters() == 2 * 14_401


def test_stacked_ensemble_over_the_three_learners_counts_bases_plus_meta() -> None:
    """Meta-learner 3->32 (+BN) -> 1: 96 + 32 + 64 + 33 = 225 over the three learners."""
    bases = [LSTMModel(), CNNModel(), AttentionModel()]
    stacked = StackedEnsemble(bases)
    assert count_parameters(stacked.meta) == 225
    assert stacked.count_parameters() == 602_625 + 130_081 + 414_081 + 225 == 1_147_012


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    "model",
    [
        LSTMModel(),
        LSTMModel(num_layers=1, bidirectional=False),
        CNNModel(),
        MultiScaleCNN(),
        AttentionModel(),
        LSTMEnsemble(members=2, hidden_size=16),
    ],
    ids=["lstm", "lstm-1-uni", "cnn", "multiscale", "attention", "lstm-ensemble"],
)
def test_every_network_maps_a_window_batch_to_one_value_per_window(model: nn.Module) -> None:
    model.eval()
    with torch.inference_mode():
        out = model(_x())
    assert out.shape == (B, 1) and torch.isfinite(out).all()


@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, True), (3, True), (2, False)])
def test_lstm_eval_shortcut_equals_the_full_lstm(layers: int, bidirectional: bool) -> None:
    """Eval mode computes only the top layer's last step; same output as nn.LSTM's."""
    model = LSTMModel(hidden_size=32, num_layers=layers, bidirectional=bidirectional).eval()
    x = _x(7)
    with torch.inference_mode():
        fast = model(x)
        full = model.fc2(model.fc1(model.lstm(x)[0][:, -1]))
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)


def test_lstm_hidden_states_and_freezing() -> None:
    model = LSTMModel()
    output, h_n, c_n = model.get_hidden_states(_x())
    assert output.shape == (B, T, 256) and h_n.shape == (4, B, 128) and c_n.shape == (4, B, 128)
    model.freeze_layers(1)
    frozen = {n for n, p in model.lstm.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.lstm.named_parameters() if "_l0" in n}
    model(_x()).sum().backward()
    assert all(p.grad is None for n, p in model.lstm.named_parameters() if "_l0" in n)
    assert all(p.grad is not None for n, p in model.lstm.named_parameters() if "_l1" in n)


@pytest.mark.parametrize(
    "model,dead",
    [
        (LSTMModel(), ["lstm.weight_hh_l1_reverse"]),
        (CNNModel(), []),
        (AttentionModel(), []),
        (MultiScaleCNN(), []),
    ],
    ids=["lstm", "cnn", "attention", "multiscale"],
)
def test_gradients_reach_every_parameter(model: nn.Module, dead: list[str]) -> None:
    """All but one: reading the biLSTM's last timestep, the top layer's backward direction
    has made one step from a zero state, so its recurrent matrix (65,536 of the 602,625
    parameters) never influences the output -- a property of the document's design."""
    model.train()
    model(_x(8)).pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == dead


def test_dropout_acts_in_train_mode_only() -> None:
    model, x = AttentionModel(), _x()
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_attention_weights_are_per_block_row_stochastic() -> None:
    model = AttentionModel().eval()
    weights = model.get_attention_weights(_x())
    assert weights.shape == (2, B, T, T) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, B, T))
    block = model.blocks[0].attention
    embedded = model.embedding(_x()) + model.positional
    assert block.get_attention_weights(embedded).shape == (B, T, T)


def test_attention_with_weights_gives_the_same_output_as_the_fast_path() -> None:
    model, x = AttentionModel().eval(), _x()
    with torch.inference_mode():
        pooled_fast = model.encode(x)[0]
        pooled_slow = model.encode(x, need_weights=True)[0]
    torch.testing.assert_close(pooled_fast, pooled_slow, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------- ensembles


def _ensemble() -> EnsembleModel:
    return create_ensemble_model(LSTMModel(hidden_size=16), CNNModel(), AttentionModel(dim=32))


def test_ensemble_bases_are_frozen_and_stay_in_eval_mode() -> None:
    ensemble = _ensemble()
    ensemble.train()
    assert all(not base.training for base in ensemble.bases)
    assert ensemble.meta.training
    final, _ = ensemble(_x(8))
    final.pow(2).mean().backward()
    assert all(p.grad is None for p in ensemble.bases.parameters())
    assert all(p.grad is not None for p in ensemble.meta.parameters())


def test_ensemble_final_is_the_mean_of_weighted_ensemble_and_meta() -> None:
    ensemble, x = _ensemble().eval(), _x()
    with torch.inference_mode():
        final, details = ensemble(x)
        base = ensemble.get_base_predictions(x)
        weights = ensemble.get_confidence_weights(x)
    expected = sum(weights[n][:, None] * base[n] for n in ("lstm", "cnn", "attention"))
    torch.testing.assert_close(details["ensemble"], expected)
    torch.testing.assert_close(final, (details["ensemble"] + details["meta"]) / 2)
    torch.testing.assert_close(sum(weights.values()), torch.ones(B))
    for i, name in enumerate(("lstm", "cnn", "attention")):
        torch.testing.assert_close(base[name], ensemble.bases[i](x))


def test_stacked_ensemble_meta_learns_over_any_bases() -> None:
    stacked = StackedEnsemble([CNNModel(), CNNModel()], hidden=32)
    stacked.freeze()
    stacked.eval()
    out, details = stacked(_x())
    assert out.shape == (B, 1) and set(details) == {"base_0", "base_1"}
    assert stacked.count_parameters() == 2 * 130_081 + (2 * 32 + 32) + 64 + 33


def test_factories_are_seeded() -> None:
    for make in (create_lstm_model, create_cnn_model, create_attention_model):
        a, b, c = make(seed=3), make(seed=3), make(seed=4)
        sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
