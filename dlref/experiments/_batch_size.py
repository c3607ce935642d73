"""Batch size: gradient noise, memory, steps to a target, the linear-scaling rule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.flatten_util import ravel_pytree

from dlref._checks import check_choice, check_in_range, check_int
from dlref.activations import tanh
from dlref.experiments._common import (
    check_fits_train,
    check_ints,
    check_positive,
    digits,
    first_below,
    fit_quietly,
    init_mlp,
    loglog_slope,
    mlp_apply,
    standardized_digits,
)
from dlref.losses import l2_loss, softmax_cross_entropy
from dlref.model_summary import summary
from dlref.nn import CNN, MLP


def batch_size_effect(
    *,
    batch_sizes: Sequence[int] = (8, 32, 128, 512),
    epochs: int = 3,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Time per epoch and validation accuracy against the batch size (Adam, fixed epochs).

    .. math:: t_{epoch}(B),\\ \\mathrm{acc}(B) \\text{ after a fixed number of epochs}

    The study guide: larger batches process an epoch faster, but make fewer updates per epoch,
    so after the same number of epochs they are less accurate. The time of the first epoch
    (compilation) is excluded when ``epochs > 1``; times are measured, never asserted.

    Args:
      batch_sizes: the batch sizes to try.
      epochs: epochs per run (at least 2 to time without compilation).
      learning_rate: Adam's step size, the same for every batch size.
      seed: seeds everything.

    Returns:
      ``{"batch_size", "time_per_epoch", "val_accuracy", "updates"}``, each ``(K,)``;
      ``updates`` is the number of optimizer steps taken (``epochs · ⌊N/B⌋``).

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: no batch size, a batch size outside ``[1, N]`` (``N`` training digits),
        ``epochs`` below 1, a non-positive ``learning_rate``, a negative ``seed``.

    Example:
      >>> r = batch_size_effect(batch_sizes=(64,), epochs=2)
      >>> r["updates"].tolist()
      [38]
    """
    op = "batch_size_effect"
    check_ints(batch_sizes, "batch_sizes", op)
    check_int(epochs, "epochs", op, minimum=1)
    check_positive(learning_rate, "learning_rate", op)
    check_int(seed, "seed", op, minimum=0)
    data = digits(seed)
    n = len(data.train[1])
    check_fits_train(batch_sizes, n, "batch_sizes", op)
    times, accs = [], []
    for b in batch_sizes:
        model = MLP(64, [128, 128], 10, rngs=nnx.Rngs(seed))
        h = fit_quietly(
            model, optax.adam(learning_rate), data, epochs=epochs, batch_size=b, seed=seed
        )
        times.append(float(np.mean(h.epoch_time[1:] if epochs > 1 else h.epoch_time)))
        accs.append(h.val_accuracy[-1])
    return {
        "batch_size": np.asarray(batch_sizes),
        "time_per_epoch": np.asarray(times),
        "val_accuracy": np.asarray(accs),
        "updates": np.asarray([epochs * (n // b) for b in batch_sizes]),
    }


def gradient_noise(
    *,
    batch_sizes: Sequence[int] = (1, 4, 16, 64, 256),
    samples: int = 200,
    hidden: int = 32,
    seed: int = 0,
) -> dict[str, np.ndarray | float]:
    """Variance of the minibatch gradient against the batch size: it falls as ``1/B``.

    .. math:: \\mathbb{E}\\,\\lVert g_B - g \\rVert^2 = \\frac{\\operatorname{tr}\\Sigma}{B},
              \\qquad \\Sigma = \\frac1N \\sum_i (g_i - g)(g_i - g)^\\top

    for batches of ``B`` examples drawn uniformly with replacement, where ``g_i`` is the
    gradient of example ``i`` and ``g`` their mean (the full-batch gradient). The parameters
    are fixed (a tanh MLP ``64 → hidden → 10`` at initialisation on standardised digits), the
    per-example gradients come from ``jax.vmap(jax.grad(...))``, and for each ``B`` the
    gradients of ``samples`` random batches (the mean of their examples' gradients, which is
    the gradient of the batch's mean loss) are compared with ``g``: their mean squared
    distance against ``tr Σ / B``. The guide (batch size 越大，其确定的
    下降方向越准): the noise falls with ``B``, with diminishing returns (halving it needs 4×
    the batch).

    Args:
      batch_sizes: the batch sizes.
      samples: minibatches drawn per batch size.
      hidden: hidden width.
      seed: seeds the init, the split and the batches.

    Returns:
      ``{"batch_size": (K,), "variance": (K,) measured, "stderr": (K,) its standard error
      (std / √samples), "theory": (K,) tr Σ / B, "slope": log-log slope of the measured
      variance, "trace": tr Σ}``.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: fewer than 2 batch sizes (the slope needs two), a batch size or ``hidden``
        below 1, ``samples`` below 2 (the standard error needs two), a negative ``seed``.

    Example:
      >>> r = gradient_noise(batch_sizes=(1, 16), samples=20)
      >>> float(r["theory"][0] / r["theory"][1])
      16.0
    """
    op = "gradient_noise"
    check_ints(batch_sizes, "batch_sizes", op, min_length=2)
    check_int(samples, "samples", op, minimum=2)
    check_int(hidden, "hidden", op, minimum=1)
    check_int(seed, "seed", op, minimum=0)
    x, y, _, _ = (jnp.asarray(a) for a in standardized_digits(seed))
    n = x.shape[0]
    params = init_mlp(jax.random.key(seed), [x.shape[1], hidden, 10], "lecun")

    def loss(p, xb, yb):
        return softmax_cross_entropy(mlp_apply(p, xb, tanh), yb)

    def flat(tree):
        return jnp.concatenate([leaf.ravel() for leaf in jax.tree.leaves(tree)])

    per_example = jax.jit(jax.vmap(lambda xi, yi: flat(jax.grad(loss)(params, xi[None], yi[None]))))
    g_i = np.asarray(per_example(x, y), np.float64)
    g = g_i.mean(0)
    trace = float(np.mean(np.sum((g_i - g) ** 2, axis=1)))
    rng = np.random.default_rng(seed)
    variance, stderr = [], []
    for b in batch_sizes:
        # the gradient of a batch's mean loss is the mean of its examples' gradients: a batch
        # drawn with replacement is a row of counts over the examples, divided by B
        idx = rng.integers(0, n, (samples, b))
        counts = np.zeros((samples, n))
        np.add.at(counts, (np.arange(samples)[:, None], idx), 1.0)
        sq = np.sum((counts @ g_i / b - g) ** 2, axis=1)
        variance.append(float(sq.mean()))
        stderr.append(float(sq.std(ddof=1) / math.sqrt(samples)))
    bs = np.asarray(batch_sizes)
    return {
        "batch_size": bs,
        "variance": np.asarray(variance),
        "stderr": np.asarray(stderr),
        "theory": trace / bs,
        "slope": loglog_slope(bs, variance),
        "trace": trace,
    }


def memory_budget_batch(
    *,
    budget_bytes: int = 2**24,
    model: str = "cnn",
    optimizer_copies: int = 3,
    xla_batches: Sequence[int] = (256, 1024),
    seed: int = 0,
) -> dict[str, int | float | np.ndarray]:
    """The largest batch whose training memory fits a budget, from :func:`dlref.summary`.

    .. math:: M(B) = (1 + c)\\,P\\,b + B\\,A_1,\\qquad
              B_{max} = \\Big\\lfloor \\frac{\\text{budget} - (1 + c)P\\,b}{A_1} \\Big\\rfloor

    ``P`` parameters of ``b = 4`` bytes (float32), kept with ``c`` copies of the same size
    (gradient + Adam's two moments: ``c = 3``), and ``A_1`` bytes of feature maps per example:
    the layer outputs of :func:`dlref.summary`, which the backward pass keeps. Every feature
    map has a batch axis, so activation memory is exactly linear in ``B`` (``activations``
    at batch 1, 2 and ``B_max`` check it). The guide (盲目增大batch size有何坏处): memory
    grows with the batch until it no longer fits.

    The count is a lower bound on what a compiled training step allocates: XLA also keeps
    intermediate values of the backward pass (ReLU masks, BN's normalised input). For the
    digits models, ``xla_temp`` is the temporary memory of the compiled ``jax.grad`` step
    (``compiled.memory_analysis()``) at the batches ``xla_batches``, to compare.

    Args:
      budget_bytes: the memory budget.
      model: ``"cnn"`` or ``"mlp"`` (dlref.nn's digits models) or a name of
        :data:`dlref.models.MODELS` (traced abstractly; ``xla_batches`` must then be empty).
      optimizer_copies: parameter-sized copies besides the weights.
      xla_batches: batch sizes at which to compile the training step and read its memory.
      seed: seeds the digits models' initialisation.

    Returns:
      ``{"params", "state_bytes", "per_example_bytes", "max_batch", "activations" (bytes at
      batch 1, 2, max_batch, max_batch + 1), "total_at_max", "total_above",
      "xla_batches", "xla_temp"}``.

    Raises:
      TypeError: an argument of the wrong type (a model name that is not a string, a
        non-int budget, batch or count).
      ValueError: an unknown model, a budget below the parameter state, a negative
        ``optimizer_copies``, a batch below 1, a negative ``seed``.

    Example:
      >>> r = memory_budget_batch(budget_bytes=2**20, model="mlp", xla_batches=())
      >>> r["total_at_max"] <= 2**20 < r["total_above"]
      True
    """
    op = "memory_budget_batch"
    from dlref import models

    check_int(budget_bytes, "budget_bytes", op, minimum=1)
    check_choice(model, ("cnn", "mlp", *models.MODELS), "model", op)
    check_int(optimizer_copies, "optimizer_copies", op, minimum=0)
    check_ints(xla_batches, "xla_batches", op, min_length=0)
    check_int(seed, "seed", op, minimum=0)
    if model in ("cnn", "mlp"):
        if model == "cnn":
            net, shape = CNN(1, 10, rngs=nnx.Rngs(seed)), (8, 8, 1)
        else:
            net, shape = MLP(64, [128, 128], 10, rngs=nnx.Rngs(seed)), (64,)
        net.eval()
        graphdef, params, rest = nnx.split(net, nnx.Param, ...)

        def forward(p, r, x):
            return nnx.merge(graphdef, p, r)(x)

        def activations(b):
            s = summary(
                forward,
                params,
                rest,
                jax.ShapeDtypeStruct((b, *shape), jnp.float32),
                data_argnum=2,
                non_trainable_argnums=(1,),
                print_fn=None,
            )
            return s.totals

    else:
        if xla_batches:
            raise ValueError(f"{op}: xla_batches must be empty for {model!r} (too big to compile)")

        def activations(b):
            return models.model_summary(model, batch=b, print_fn=None).totals

    t1, t2 = activations(1), activations(2)
    per_example = t2.activation_bytes - t1.activation_bytes
    state = (1 + optimizer_copies) * t1.params * 4 + t1.non_trainable * 4
    if budget_bytes < state + per_example:
        raise ValueError(
            f"{op}: budget_bytes={budget_bytes} does not hold the parameter state "
            f"({state} bytes) and one example ({per_example} bytes)"
        )
    max_batch = (budget_bytes - state) // per_example
    at_max, above = activations(max_batch), activations(max_batch + 1)
    xla_temp = []
    if xla_batches:
        net.train()
        graphdef, params, rest = nnx.split(net, nnx.Param, ...)

        def grad(p, r, x, y):  # train mode: BN uses (and updates) the batch statistics
            m = nnx.merge(graphdef, p, r)
            return nnx.grad(lambda m: softmax_cross_entropy(m(x), y))(m)

        for b in xla_batches:
            compiled = (
                jax.jit(grad)
                .lower(params, rest, jnp.zeros((b, *shape)), jnp.zeros((b,), jnp.int32))
                .compile()
            )
            xla_temp.append(compiled.memory_analysis().temp_size_in_bytes)
    return {
        "params": t1.params,
        "state_bytes": state,
        "per_example_bytes": per_example,
        "max_batch": int(max_batch),
        "activations": np.asarray(
            [
                t1.activation_bytes,
                t2.activation_bytes,
                at_max.activation_bytes,
                above.activation_bytes,
            ]
        ),
        "total_at_max": state + at_max.activation_bytes,
        "total_above": state + above.activation_bytes,
        "xla_batches": np.asarray(xla_batches, int),
        "xla_temp": np.asarray(xla_temp, float),
    }


def batch_size_scaling(
    *,
    batch_sizes: Sequence[int] = (16, 32, 128, 256, 512, 1024),
    break_batch: int = 256,
    constant_lr_fraction: float = 1 / 16,
    tolerance: float = 0.05,
    max_steps: int = 200,
    seed: int = 0,
) -> dict[str, np.ndarray | float]:
    """Steps of SGD to a target loss against the batch size, and where linear scaling breaks.

    .. math:: \\eta(B) = \\frac{2}{\\lambda_{max}} \\cdot \\frac{B}{B_{break}}
              \\quad\\text{(linear scaling)},\\qquad
              \\eta < \\frac{2}{\\lambda_{max}(H)} \\text{ for gradient descent to converge}

    A least-squares problem (a linear model of the standardised digits regressing the one-hot
    labels under :func:`dlref.l2_loss`) has a constant Hessian ``H``; its largest eigenvalue
    is computed from ``jax.hessian``. The optimum ``L*`` comes from ``numpy.linalg.lstsq``;
    the target is ``L* + tolerance · (L_0 − L*)``. Two learning-rate rules:

    * **linear scaling** (Goyal et al. 2017): ``η ∝ B``, anchored so that ``η`` reaches the
      stability limit ``2/λ_max`` at ``B = break_batch``. While ``η`` is small, SGD follows
      the same path per example seen, so the steps fall as ``1/B`` (``steps · B`` constant);
      above ``break_batch`` the step exceeds ``2/λ_max`` and training diverges: the rule
      breaks where the curvature says, not at a tuned batch size.
    * **constant** ``η = constant_lr_fraction · 2/λ_max``: beyond a few dozen examples the
      minibatch gradient is nearly the full one, the steps stop falling and the *examples*
      (epochs) needed grow with ``B`` (the guide: 要想达到相同的精度，其所花费的时间大大增加了).

    Args:
      batch_sizes: the batch sizes (each at most the training-set size).
      break_batch: the batch at which linear scaling reaches ``2/λ_max``.
      constant_lr_fraction: the constant rule's step as a fraction of ``2/λ_max``.
      tolerance: the target's fraction of the initial loss gap.
      max_steps: steps per run (``None`` in the results if the target is not reached).
      seed: seeds the batches and the split.

    Returns:
      ``{"batch_size", "lr_linear", "steps_linear", "steps_constant" (K,) (``-1``: target
      not reached), "diverged_linear" (K,) bool, "lambda_max", "lr_max" (= 2/λ_max),
      "lstsq_loss", "target", "lr_constant"}``.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: no batch size, a batch size outside ``[1, N]``, ``break_batch`` or
        ``max_steps`` below 1, a non-positive ``constant_lr_fraction``, a ``tolerance``
        outside ``(0, 1]``, a negative ``seed``.

    Example:
      >>> r = batch_size_scaling(batch_sizes=(16, 1024), max_steps=50)
      >>> r["diverged_linear"].tolist()
      [False, True]
    """
    op = "batch_size_scaling"
    check_ints(batch_sizes, "batch_sizes", op)
    check_int(break_batch, "break_batch", op, minimum=1)
    check_positive(constant_lr_fraction, "constant_lr_fraction", op)
    check_in_range(tolerance, 0.0, 1.0, "tolerance", op, lo_closed=False)
    check_int(max_steps, "max_steps", op, minimum=1)
    check_int(seed, "seed", op, minimum=0)
    x, labels, _, _ = standardized_digits(seed)
    n = len(x)
    check_fits_train(batch_sizes, n, "batch_sizes", op)
    onehot = np.eye(10, dtype=np.float32)[labels]
    design = np.concatenate([x, np.ones((n, 1))], 1)
    coef, *_ = np.linalg.lstsq(design, onehot.astype(np.float64), rcond=None)
    lstsq_loss = float(np.mean((design @ coef - onehot) ** 2))
    xj, yj = jnp.asarray(x), jnp.asarray(onehot)

    def loss(p, weights):  # weights: each example's share of the batch (1/n each: full batch)
        per_example = jnp.mean((xj @ p["w"] + p["b"] - yj) ** 2, axis=1)
        return jnp.sum(weights * per_example)

    full = jnp.full((n,), 1.0 / n)
    p0 = {"w": jnp.zeros((x.shape[1], 10)), "b": jnp.zeros((10,))}
    assert abs(float(loss(p0, full)) - float(l2_loss(xj @ p0["w"] + p0["b"], yj))) < 1e-6
    flat0, unravel = ravel_pytree(p0)
    hess = jax.hessian(lambda v: loss(unravel(v), full))(flat0)
    lambda_max = float(np.linalg.eigvalsh(np.asarray(hess, np.float64))[-1])
    lr_max = 2.0 / lambda_max
    loss0 = float(loss(p0, full))
    target = lstsq_loss + tolerance * (loss0 - lstsq_loss)

    # The full-set loss of a linear model from the Gram matrix [X 1]ᵀ[X 1] (65 × 65): cheap
    # to evaluate after every step.
    xt = jnp.concatenate([xj, jnp.ones((n, 1))], 1)
    gram, cross, yy = xt.T @ xt, xt.T @ yj, jnp.sum(yj**2)

    def full_loss(p):
        wt = jnp.concatenate([p["w"], p["b"][None]], 0)
        return (jnp.sum(wt * (gram @ wt)) - 2 * jnp.sum(wt * cross) + yy) / yj.size

    # A batch of B examples drawn with replacement enters the mean loss with weight
    # count_i / B: the gradient of the weighted full-set loss is the minibatch gradient, and
    # every batch size runs through the same compiled program (vmapped over the runs).
    @jax.jit
    def train(lr, batch, key):
        def step(p, k):
            idx = jax.random.randint(k, (batch_cap,), 0, n)
            take = (jnp.arange(batch_cap) < batch) / batch
            weights = jnp.zeros(n).at[idx].add(take)
            g = jax.grad(loss)(p, weights)
            p = jax.tree.map(lambda a, ga: a - lr * ga, p, g)
            return p, full_loss(p)

        return jax.lax.scan(step, p0, jax.random.split(key, max_steps))[1]

    batch_cap = max(batch_sizes)
    bs = np.asarray(batch_sizes)
    lr_const = constant_lr_fraction * lr_max
    lr_lin = lr_max * bs / break_batch
    keys = jax.random.split(jax.random.key(seed), len(bs))
    lrs = np.concatenate([lr_lin, np.full(len(bs), lr_const)])
    curves = np.asarray(
        jax.vmap(train)(
            jnp.asarray(lrs), jnp.asarray(np.concatenate([bs, bs])), jnp.concatenate([keys, keys])
        )
    )
    lin, const = curves[: len(bs)], curves[len(bs) :]
    return {
        "batch_size": bs,
        "lr_linear": lr_lin,
        "steps_linear": np.asarray([first_below(c, target) or -1 for c in lin]),
        "steps_constant": np.asarray([first_below(c, target) or -1 for c in const]),
        "diverged_linear": np.asarray([bool(not np.isfinite(c[-1]) or c[-1] > loss0) for c in lin]),
        "lambda_max": lambda_max,
        "lr_max": lr_max,
        "lstsq_loss": lstsq_loss,
        "target": target,
        "lr_constant": lr_const,
    }
