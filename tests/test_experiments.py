"""dlref.experiments: tiny runs; each asserts the direction of the effect it measures."""

from __future__ import annotations

import numpy as np
import pytest

from dlref import experiments as E


def test_vanishing_gradients():
    g = E.vanishing_gradients(depth=10, batch_size=64)
    assert set(g) == set(E.VARIANTS) and all(v.shape == (10,) for v in g.values())
    # sigmoid: the first layer's gradient is orders of magnitude below the last one's
    # (sigmoid' <= 1/4 per layer); ReLU with He init keeps it within a factor of 10
    assert g["sigmoid"][0] < 1e-3 * g["sigmoid"][-1]
    assert 0.1 < g["relu"][0] / g["relu"][-1] < 10
    assert g["residual"][0] > g["residual"][-1]  # no vanishing with shortcuts
    with pytest.raises(ValueError, match="vanishing_gradients: variant must be one of"):
        E.vanishing_gradients(depth=2, variants=("elu",))


def test_gradient_norms_through_time():
    g = E.gradient_norms_through_time(length=50, hidden=16, batch_size=8)
    assert g["rnn"].shape == g["lstm"].shape == (50,)
    # the fraction of the last step's gradient that reaches the first step: measured
    # 1.4e-3 (LSTM) vs 1.3e-5 (RNN) at seed 0; a factor 10 leaves a wide margin
    assert g["lstm"][0] / g["lstm"][-1] > 10 * g["rnn"][0] / g["rnn"][-1]


def test_dropout_bn_variance_shift():
    r = E.dropout_bn_variance_shift(epochs=3)
    # dropout before BN: eval-time variance below the running estimate (about 1 - p = 0.5
    # for p = 0.5); BN before dropout: no shift
    assert r["dropout_before_bn"]["shift"] < 0.8
    assert abs(r["bn_before_dropout"]["shift"] - 1) < 0.1


def test_lr_sensitivity_and_batch_size():
    r = E.lr_sensitivity(learning_rates=(1.0,), epochs=1, depth=2)
    assert r["learning_rate"].tolist() == [1.0] and r["bn"].shape == r["no_bn"].shape == (1,)
    assert r["bn"][0] > r["no_bn"][0]  # at a large SGD step BN trains, plain ReLU MLP does not
    b = E.batch_size_effect(batch_sizes=(32, 256), epochs=2)
    assert b["steps_per_epoch"].tolist() == [1257 // 32, 1257 // 256]
    assert np.all(b["time_per_epoch"] > 0)


def test_fitting_regimes():
    h = E.fitting_regimes(n_train=64, epochs=40, patience=3)
    over = h["overfit"]
    assert over.train_loss[-1] < 0.1 * over.val_loss[-1]  # memorised the 64 examples
    assert h["underfit"].train_loss[-1] > 10 * over.train_loss[-1]
    assert h["early_stopping"].stopped_early
