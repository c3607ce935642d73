"""Measurements of the study guide's claims about training, as plain functions returning arrays.

Each function runs a small, seeded experiment on scikit-learn's digits (or the adding
problem) with the models of :mod:`dlref.nn` and the loop of :mod:`dlref.train`, and returns
NumPy arrays / dicts to plot (``notebooks/06_training_dynamics.ipynb`` and
``notebooks/07_rnn_lstm.ipynb``). The defaults are small enough for CI; raise ``epochs``,
``depth`` and so on for clearer curves.

1. :func:`vanishing_gradients` — per-layer gradient norms of a deep MLP, sigmoid vs tanh vs
   ReLU vs ReLU+BN vs residual.
2. :func:`lr_sensitivity` — accuracy over a learning-rate sweep, with and without BN.
3. :func:`batch_size_effect` — time per epoch and accuracy against the batch size.
4. :func:`dropout_bn_variance_shift` — dropout before vs after BN (Li et al. 2019).
5. :func:`fitting_regimes` — under- and over-fitting, with L2 and early stopping.
6. :func:`gradient_norms_through_time` — ``‖∂L/∂h_t‖`` over ``t`` for RNN vs LSTM.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax

from dlref.activations import relu
from dlref.losses import l2_loss, softmax_cross_entropy
from dlref.nn import LSTM, MLP, RNN, BatchNorm, Dropout, lstm_cell, rnn_cell
from dlref.regularize import EarlyStopping
from dlref.train import History, Splits, adding_problem, fit
from dlref.train import load_digits as _load_digits

__all__ = [
    "VARIANTS",
    "vanishing_gradients",
    "lr_sensitivity",
    "batch_size_effect",
    "dropout_bn_variance_shift",
    "fitting_regimes",
    "gradient_norms_through_time",
]

VARIANTS = ("sigmoid", "tanh", "relu", "relu+bn", "residual")


@functools.lru_cache(maxsize=4)
def _digits(seed: int, layout: str = "flat") -> Splits:
    return _load_digits(seed=seed, layout=layout)


def _variant_mlp(variant: str, depth: int, width: int, seed: int) -> MLP:
    if variant not in VARIANTS:
        raise ValueError(f"vanishing_gradients: variant must be one of {VARIANTS}, got {variant!r}")
    activation = variant if variant in ("sigmoid", "tanh", "relu") else "relu"
    return MLP(
        64,
        [width] * depth,
        10,
        activation=activation,
        batch_norm=variant in ("relu+bn", "residual"),
        residual=variant == "residual",
        rngs=nnx.Rngs(seed),
    )


def vanishing_gradients(
    *,
    depth: int = 20,
    width: int = 64,
    batch_size: int = 256,
    variants: Sequence[str] = VARIANTS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per-layer gradient norms at initialisation of a deep MLP on a batch of digits.

    .. math:: g_l = \\lVert \\partial L / \\partial W_l \\rVert_F,\\quad l = 1..\\text{depth}

    The study guide claims sigmoid (and tanh) saturate and shrink the gradient layer by layer while
    ReLU, BN and residual connections keep it flowing. ``"residual"`` is ReLU + BN with an
    identity shortcut around every layer, as in a ResNet (without BN, identity shortcuts over
    He-initialised ReLU layers make the activations, and the gradients, grow with depth).
    Kernels use the init suited to each activation (He for ReLU, LeCun for sigmoid/tanh), so
    the comparison is not an init artefact.

    Args:
      depth: number of hidden layers.
      width: hidden width (64, the digit size, so residual shortcuts apply to every layer).
      batch_size: examples in the batch.
      variants: any of :data:`VARIANTS`.
      seed: seeds the initialisation and the split.

    Returns:
      ``{variant: array (depth,)}`` of gradient norms, input layer first.

    Raises:
      ValueError: for an unknown variant.

    Example:
      >>> g = vanishing_gradients(depth=3, variants=("sigmoid",))
      >>> g["sigmoid"].shape
      (3,)
    """
    x, y = _digits(seed).train
    x, y = jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])
    out = {}
    for variant in variants:
        model = _variant_mlp(variant, depth, width, seed)
        model.train()
        grads = nnx.grad(lambda m: softmax_cross_entropy(m(x), y))(model)
        out[variant] = np.array(
            [float(jnp.linalg.norm(grads["linears"][i]["kernel"][...])) for i in range(depth)]
        )
    return out


def lr_sensitivity(
    *,
    learning_rates: Sequence[float] = (0.01, 0.1, 1.0, 3.0),
    epochs: int = 3,
    depth: int = 4,
    width: int = 64,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Validation accuracy after SGD training over a learning-rate sweep, with and without BN.

    .. math:: \\mathrm{acc}(\\eta),\\ \\eta \\in \\text{learning\\_rates}

    The study guide claims BN makes training less sensitive to the learning rate (BN undoes the
    scale of the weights, so a large step does not push pre-activations into saturation).

    Args:
      learning_rates: plain-SGD step sizes.
      epochs: epochs per run.
      depth: hidden layers of the ReLU MLP.
      width: hidden width.
      batch_size: batch size.
      seed: seeds init, split and shuffling.

    Returns:
      ``{"learning_rate": (K,), "bn": (K,), "no_bn": (K,)}`` (a diverged run scores its
      accuracy on non-finite outputs, i.e. about chance).

    Example:
      >>> r = lr_sensitivity(learning_rates=(0.1,), epochs=1)
      >>> sorted(r)
      ['bn', 'learning_rate', 'no_bn']
    """
    data = _digits(seed)
    res = {"bn": [], "no_bn": []}
    for lr in learning_rates:
        for name, bn in (("bn", True), ("no_bn", False)):
            model = MLP(64, [width] * depth, 10, batch_norm=bn, rngs=nnx.Rngs(seed))
            h = fit(
                model,
                optax.sgd(lr),
                data.train,
                val=data.val,
                epochs=epochs,
                batch_size=batch_size,
                restore_best=False,
                seed=seed,
                progress=False,
            )
            acc = h.val_accuracy[-1]
            res[name].append(acc if np.isfinite(h.val_loss[-1]) else 0.1)
    return {
        "learning_rate": np.asarray(learning_rates, float),
        "bn": np.asarray(res["bn"]),
        "no_bn": np.asarray(res["no_bn"]),
    }


def batch_size_effect(
    *,
    batch_sizes: Sequence[int] = (8, 32, 128, 512),
    epochs: int = 3,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Time per epoch and validation accuracy against the batch size (Adam, fixed epochs).

    .. math:: t_{epoch}(B),\\ \\mathrm{acc}(B) \\text{ after a fixed number of epochs}

    The study guide claims: larger batches process the data faster, but need more epochs for the
    same accuracy (fewer updates per epoch). The time of the first epoch (compilation) is
    excluded when ``epochs > 1``.

    Args:
      batch_sizes: the batch sizes to try.
      epochs: epochs per run (at least 2 to time without compilation).
      learning_rate: Adam's step size, the same for every batch size.
      seed: seeds everything.

    Returns:
      ``{"batch_size", "time_per_epoch", "val_accuracy", "steps_per_epoch"}``, each ``(K,)``.

    Example:
      >>> r = batch_size_effect(batch_sizes=(64,), epochs=2)
      >>> r["steps_per_epoch"].tolist()
      [19]
    """
    data = _digits(seed)
    n = len(data.train[1])
    times, accs = [], []
    for b in batch_sizes:
        model = MLP(64, [128, 128], 10, rngs=nnx.Rngs(seed))
        h = fit(
            model,
            optax.adam(learning_rate),
            data.train,
            val=data.val,
            epochs=epochs,
            batch_size=b,
            restore_best=False,
            seed=seed,
            progress=False,
        )
        times.append(float(np.mean(h.epoch_time[1:] if epochs > 1 else h.epoch_time)))
        accs.append(h.val_accuracy[-1])
    return {
        "batch_size": np.asarray(batch_sizes),
        "time_per_epoch": np.asarray(times),
        "val_accuracy": np.asarray(accs),
        "steps_per_epoch": np.asarray([n // b for b in batch_sizes]),
    }


class _OrderNet(nnx.Module):
    """``fc → relu → [dropout] → fc → BN → relu → [dropout] → head`` (one of the two dropouts)."""

    def __init__(self, order: str, rate: float, *, rngs: nnx.Rngs):
        self.order = order
        self.fc1 = nnx.Linear(64, 128, rngs=rngs)
        self.fc2 = nnx.Linear(128, 128, rngs=rngs)
        self.bn = BatchNorm(128)
        self.drop = Dropout(rate, rngs=rngs)
        self.head = nnx.Linear(128, 10, rngs=rngs)

    def bn_input(self, x):
        a = relu(self.fc1(x))
        if self.order == "dropout_before_bn":
            a = self.drop(a)
        return self.fc2(a)

    def __call__(self, x):
        z = relu(self.bn(self.bn_input(x)))
        if self.order == "bn_before_dropout":
            z = self.drop(z)
        return self.head(z)


def dropout_bn_variance_shift(
    *, rate: float = 0.5, epochs: int = 5, batch_size: int = 64, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Dropout before BN vs after it: the variance shift between training and inference.

    .. math:: \\text{shift} = \\frac{1}{C}\\sum_c
              \\frac{\\mathrm{Var}_{test}[z_c]}{\\hat\\sigma^2_{running,c}}

    ``z`` is the input of the BN layer. With dropout *before* BN, BN's running variance is
    learned on dropped-out, rescaled inputs (inverted dropout inflates the second moment by
    ``1/(1-p)``) but at inference the inputs are not dropped, so the variance BN divides by
    is wrong (shift < 1); with BN before dropout BN never sees dropout (shift ≈ 1). The study
    guide's "BN and dropout conflict" paragraph, measured.

    Args:
      rate: dropout rate.
      epochs: training epochs (Adam 1e-3).
      batch_size: batch size.
      seed: seeds everything.

    Returns:
      ``{"dropout_before_bn" | "bn_before_dropout": {"shift", "train_var_ratio",
      "val_accuracy"}}``; ``train_var_ratio`` is the same ratio with the input variance
      measured in train mode (≈ 1 for both: BN's statistics match what it saw).

    Example:
      >>> r = dropout_bn_variance_shift(epochs=1)
      >>> r["dropout_before_bn"]["shift"] < r["bn_before_dropout"]["shift"]
      True

    References:
      Li, Chen, Hu & Yang, "Understanding the disharmony between dropout and batch
      normalization by variance shift", CVPR 2019.
    """
    data = _digits(seed)
    xv = jnp.asarray(data.val[0])
    out = {}
    for order in ("dropout_before_bn", "bn_before_dropout"):
        model = _OrderNet(order, rate, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
        h = fit(
            model,
            optax.adam(1e-3),
            data.train,
            val=data.val,
            epochs=epochs,
            batch_size=batch_size,
            restore_best=False,
            seed=seed,
            progress=False,
        )
        running = np.asarray(model.bn.var[...])
        model.eval()
        test_var = np.var(np.asarray(model.bn_input(xv)), axis=0, ddof=1)
        model.train()
        train_var = np.var(np.asarray(model.bn_input(xv)), axis=0, ddof=1)
        model.eval()
        out[order] = {
            "shift": float(np.mean(test_var / running)),
            "train_var_ratio": float(np.mean(train_var / running)),
            "val_accuracy": h.val_accuracy[-1],
        }
    return out


def fitting_regimes(
    *, n_train: int = 200, epochs: int = 60, patience: int = 5, l2: float = 1e-3, seed: int = 0
) -> dict[str, History]:
    """Under-fitting, over-fitting, and over-fitting tamed by L2 or early stopping.

    .. math:: \\text{gap} = L_{val} - L_{train} \\text{ per epoch}

    Trained on only ``n_train`` digits so that a wide MLP can memorise them:

    * ``"underfit"``: a 2-unit hidden layer (too little capacity: both losses stay high);
    * ``"overfit"``: two 256-unit layers, no regularisation (train loss → 0, validation loss
      turns up);
    * ``"l2"``: the same with ``l2 · ½‖θ‖²`` (:func:`dlref.regularize.l2_penalty`);
    * ``"early_stopping"``: the same, stopped when the validation loss has not improved for
      ``patience`` epochs (the best epoch's weights restored).

    Args:
      n_train: training examples used.
      epochs: maximum epochs.
      patience: early-stopping patience.
      l2: the L2 weight.
      seed: seeds everything.

    Returns:
      ``{regime: History}``.

    Example:
      >>> h = fitting_regimes(n_train=64, epochs=2)
      >>> sorted(h)
      ['early_stopping', 'l2', 'overfit', 'underfit']
    """
    data = _digits(seed)
    train = (data.train[0][:n_train], data.train[1][:n_train])
    settings = {
        "underfit": dict(hidden=[2]),
        "overfit": dict(hidden=[256, 256]),
        "l2": dict(hidden=[256, 256], l2=l2),
        "early_stopping": dict(hidden=[256, 256], early_stopping=EarlyStopping(patience=patience)),
    }
    out = {}
    for name, s in settings.items():
        model = MLP(64, s.pop("hidden"), 10, rngs=nnx.Rngs(seed))
        out[name] = fit(
            model,
            optax.adam(3e-3),
            train,
            val=data.val,
            epochs=epochs,
            batch_size=min(32, n_train),
            seed=seed,
            progress=False,
            **s,
        )
    return out


def gradient_norms_through_time(
    *, length: int = 50, hidden: int = 32, batch_size: int = 32, seed: int = 0
) -> dict[str, np.ndarray]:
    """``‖∂L/∂h_t‖`` for every step ``t`` of an RNN and an LSTM at initialisation.

    .. math:: g_t = \\Big\\lVert \\frac{\\partial L}{\\partial h_t} \\Big\\rVert_F,
              \\quad L = \\mathrm{MSE}(w^\\top h_T, y) \\text{ on the adding problem}

    Computed by adding a zero perturbation ``ε_t`` to each hidden state inside the scan and
    differentiating with respect to it (``∂L/∂ε_t = ∂L/∂h_t``). For the RNN the gradient
    is multiplied by ``diag(1 − h_t²) W_hh^T`` at every step and decays geometrically
    backwards in time; the LSTM's additive cell path (``∂c_t/∂c_{t−1} = f_t``, forget
    bias 1) decays far more slowly. This fills the study guide's empty LSTM section (erratum 17,
    docs/errata.md).

    Args:
      length: sequence length ``T``.
      hidden: hidden size.
      batch_size: sequences in the batch.
      seed: seeds data and init.

    Returns:
      ``{"rnn": (T,), "lstm": (T,)}``, index ``t`` = step ``t`` (the last is ``T−1``).

    Example:
      >>> g = gradient_norms_through_time(length=10)
      >>> g["rnn"].shape
      (10,)
    """
    key = jax.random.key(seed)
    xs, y = adding_problem(key, batch_size, length)
    out = {}
    for name, cls, cell in (("rnn", RNN, rnn_cell), ("lstm", LSTM, lstm_cell)):
        model = cls(2, hidden, out_features=1, rngs=nnx.Rngs(seed))
        params = model.params
        w, b = model.head.kernel[...], model.head.bias[...]
        carry0 = model.initial_carry(batch_size)

        def loss(eps, params=params, w=w, b=b, carry0=carry0, cell=cell):
            def step(carry, inp):
                x_t, e_t = inp
                new = cell(params, carry, x_t)
                new = (new[0] + e_t, new[1]) if isinstance(new, tuple) else new + e_t
                return new, None

            final, _ = lax.scan(step, carry0, (jnp.swapaxes(xs, 0, 1), eps))
            h = final[0] if isinstance(final, tuple) else final
            return l2_loss((h @ w + b)[:, 0], y)

        g = jax.grad(loss)(jnp.zeros((length, batch_size, hidden)))
        out[name] = np.asarray(jnp.sqrt(jnp.sum(g**2, axis=(1, 2))))
    return out
