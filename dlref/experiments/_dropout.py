"""Dropout as an ensemble: the weight-scaling rule against Monte Carlo averages of sub-networks."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlref._checks import check_in_range, check_int
from dlref.activations import relu, softmax
from dlref.experiments._common import check_counts, digits, init_mlp
from dlref.losses import softmax_cross_entropy
from dlref.regularize import dropout


def _mlp(params, x, key, rate, train):
    """``x → linear → relu → [dropout → linear → relu] × … → dropout → head``: dropout on the
    input of every layer but the first."""
    keys = jax.random.split(key, len(params))
    for i, (w, b) in enumerate(params):
        if i > 0:
            x = dropout(keys[i], x, rate, train=train)
        x = x @ w + b
        if i < len(params) - 1:
            x = relu(x)
    return x


def dropout_ensemble(
    *,
    rate: float = 0.5,
    samples: int = 500,
    hidden: int = 128,
    steps: int = 300,
    batch_size: int = 64,
    n_linear: int = 16,
    n_eval: int = 135,
    seed: int = 0,
) -> dict[str, float | np.ndarray]:
    """Inference-time weight scaling against the average of many dropout sub-networks.

    .. math:: \\mathbb{E}_m\\Big[\\frac{(m \\odot x) W}{1 - p}\\Big] = xW,\\qquad
              \\mathrm{Var}_m\\Big[\\frac{(m \\odot x) W}{1 - p}\\Big]_k
              = \\frac{p}{1 - p} \\sum_j x_j^2 W_{jk}^2

    Dropout trains a different sub-network (mask ``m``) at every step; at inference the guide
    (Dropout 为什么能够防止过拟合, item 2) says the network acts as the ensemble of them. dlref's
    (inverted) dropout scales the kept units by ``1/(1 − p)`` in training, so inference is the
    full network unchanged: the "weight-scaling rule" of Srivastava et al. (2014). Measured:

    * **a linear layer** (random ``W``, ``n_linear`` digits as ``x``): the average of
      ``samples`` masked outputs matches ``xW`` up to Monte Carlo error. ``linear_z`` is the
      largest ``|mean − xW| / (σ/√samples)`` over all outputs, with ``σ²`` the exact variance
      above: the rule is exact in expectation, so ``linear_z`` is the size of a standard
      normal maximum (below ~4.5 over 160 outputs with probability 0.999);
    * **after non-linearities**: an MLP ``64 → hidden → hidden → 10`` with dropout after
      each hidden ReLU, trained with Adam on the digits. The Monte Carlo average of its logits
      differs from the weight-scaled logits by ``mlp_gap`` (relative), far more than its
      Monte Carlo error ``mlp_mc_error``: after a ReLU the rule is an approximation.
      ``agreement`` is the fraction of ``n_eval`` validation digits on which the two predict
      the same class, and the accuracies of both are reported.

    Args:
      rate: the dropout rate ``p``.
      samples: masks averaged.
      hidden: hidden width of the MLP.
      steps: Adam steps.
      batch_size: batch size.
      n_linear: digits used for the linear layer.
      n_eval: validation digits used for the MLP.
      seed: seeds weights, masks, batches and the split.

    Returns:
      ``{"linear_z", "linear_gap", "linear_mc_error", "mlp_gap", "mlp_mc_error",
      "agreement", "accuracy_weight_scaling", "accuracy_mc"}``. Gaps and Monte Carlo errors
      are relative to the norm of the weight-scaled output; the Monte Carlo error is
      ``√(Σ Var / samples)``, the expected norm of the noise of the average, so an exact rule
      gives ``gap² ≈ mc_error²`` (their ratio has mean 1) and a biased one ``gap² ≫
      mc_error²``.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: a ``rate`` outside ``(0, 1)`` (no masks at 0), ``samples`` below 2 (the
        Monte Carlo error needs two), a size or count below 1, a negative ``seed``.

    Example:
      >>> r = dropout_ensemble(samples=100, steps=10)
      >>> r["linear_z"] < 5
      True
    """
    op = "dropout_ensemble"
    check_in_range(rate, 0.0, 1.0, "rate", op, lo_closed=False, hi_closed=False)
    check_int(samples, "samples", op, minimum=2)
    check_counts(
        op, hidden=hidden, steps=steps, batch_size=batch_size, n_linear=n_linear, n_eval=n_eval
    )
    check_int(seed, "seed", op, minimum=0)
    d = digits(seed)
    x, y = jnp.asarray(d.train[0]), jnp.asarray(d.train[1])
    xv, yv = jnp.asarray(d.val[0][:n_eval]), jnp.asarray(d.val[1][:n_eval])
    keys = jax.random.split(jax.random.key(seed), 6)

    @jax.jit
    def linear(xl, k_w, k_masks):
        w = jax.random.normal(k_w, (xl.shape[1], 10)) / math.sqrt(xl.shape[1])
        outs = jax.vmap(lambda k: dropout(k, xl, rate) @ w)(jax.random.split(k_masks, samples))
        exact = xl @ w
        sigma = jnp.sqrt(rate / (1 - rate) * (xl**2) @ (w**2))  # exact std of one masked output
        err = outs.mean(0) - exact
        norm = jnp.linalg.norm(exact)
        return (
            jnp.max(jnp.abs(err) / (sigma / math.sqrt(samples))),
            jnp.linalg.norm(err) / norm,
            jnp.sqrt(jnp.sum(sigma**2) / samples) / norm,
        )

    linear_z, linear_gap, linear_mc = map(float, linear(x[:n_linear], keys[0], keys[1]))

    # an MLP trained with dropout
    params = init_mlp(keys[2], [x.shape[1], hidden, hidden, 10], "he")
    opt = optax.adam(1e-3)
    batches = jax.random.randint(keys[3], (steps, batch_size), 0, x.shape[0])
    step_keys = jax.random.split(keys[4], steps)

    @jax.jit
    def train(p):
        def step(carry, inp):
            p, s = carry
            idx, k = inp
            g = jax.grad(lambda p: softmax_cross_entropy(_mlp(p, x[idx], k, rate, True), y[idx]))(p)
            u, s = opt.update(g, s)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (p, opt.init(p)), (batches, step_keys))[0][0]

    @jax.jit
    def compare(p, key):
        scaled = _mlp(p, xv, key, rate, False)
        sub = jax.vmap(lambda k: _mlp(p, xv, k, rate, True))(jax.random.split(key, samples))
        norm = jnp.linalg.norm(scaled)
        probs_mc = softmax(sub).mean(0)
        return (
            jnp.linalg.norm(sub.mean(0) - scaled) / norm,
            jnp.sqrt(jnp.sum(sub.var(0, ddof=1)) / samples) / norm,
            jnp.mean(jnp.argmax(scaled, -1) == jnp.argmax(probs_mc, -1)),
            jnp.mean(jnp.argmax(scaled, -1) == yv),
            jnp.mean(jnp.argmax(probs_mc, -1) == yv),
        )

    gap, mc_error, agreement, acc_ws, acc_mc = map(float, compare(train(params), keys[5]))
    return {
        "linear_z": linear_z,
        "linear_gap": linear_gap,
        "linear_mc_error": linear_mc,
        "mlp_gap": gap,
        "mlp_mc_error": mc_error,
        "agreement": agreement,
        "accuracy_weight_scaling": acc_ws,
        "accuracy_mc": acc_mc,
    }
