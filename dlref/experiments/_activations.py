"""Activation functions: their properties, centring, sparsity, linear outputs, 1×1 convolutions."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlref._checks import check_int, check_real
from dlref.activations import leaky_relu, relu, sigmoid, softplus, tanh
from dlref.convolution import conv
from dlref.experiments._common import (
    check_choices,
    check_counts,
    check_ints,
    check_positive,
    digits,
    first_below,
    init_mlp,
    mlp_apply,
    standardized_digits,
)
from dlref.losses import l2_loss, softmax_cross_entropy

_BASIC = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "softplus": softplus,
}

# The activations of :func:`activation_convergence`. "centred_sigmoid" and "shifted_tanh" have
# the derivative of sigmoid and tanh and differ from them only by a constant: they isolate the
# effect of the mean of the activation from the effect of its slope.
CONVERGENCE_ACTIVATIONS = {
    "sigmoid": sigmoid,
    "centred_sigmoid": lambda z: sigmoid(z) - 0.5,
    "shifted_tanh": lambda z: tanh(z) + 1.0,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
}


def activation_properties(
    *, names: Sequence[str] = tuple(_BASIC), limit: float = 1e4, eps: float = 1e-3, seed: int = 0
) -> dict[str, dict[str, float | bool]]:
    """The properties the study guide lists for an activation, measured on a grid.

    .. math:: \\text{monotone: } f'(x) \\ge 0;\\quad f(x) \\approx x \\text{ near 0: }
              |f(\\pm\\epsilon) \\mp \\epsilon| \\le 0.01\\,\\epsilon;\\quad
              \\text{bounded: } \\sup |f| < \\infty

    Derivatives are ``jax.grad`` of the dlref activations on an even grid of ``[-limit, limit]``
    plus 1000 random points of ``[-10, 10]``; the range is the minimum and maximum of ``f`` on
    that grid (an unbounded activation reaches ``±limit`` there, a bounded one stays below 1
    in magnitude). The guide (激活函数有哪些性质): monotone activations make a one-layer
    network's loss convex; ``f(x) ≈ x`` near 0 lets small random initialisations train
    efficiently; bounded outputs make gradient methods more stable, unbounded ones more
    efficient with a smaller learning rate.

    Args:
      names: activations of :mod:`dlref.activations` (``sigmoid``, ``tanh``, ``relu``,
        ``leaky_relu``, ``softplus``).
      limit: half-width of the grid.
      eps: the distance from 0 at which ``f(x) ≈ x`` is checked.
      seed: seeds the random points.

    Returns:
      ``{name: {"monotone", "near_identity", "bounded", "f0", "slope0", "min", "max",
      "min_slope"}}``; ``slope0`` is ``jax.grad`` at 0 (the subgradient dlref picks at a
      kink).

    Raises:
      TypeError: an argument of the wrong type (e.g. a string for ``limit``, a bool for
        ``seed``).
      ValueError: an unknown name, no name, a non-positive or non-finite ``limit`` or ``eps``,
        a negative ``seed``.

    Example:
      >>> p = activation_properties(names=("tanh",))
      >>> p["tanh"]["monotone"], p["tanh"]["near_identity"], p["tanh"]["bounded"]
      (True, True, True)
    """
    op = "activation_properties"
    check_choices(names, _BASIC, "names", op, entry="activation")
    check_positive(limit, "limit", op)
    check_positive(eps, "eps", op)
    check_int(seed, "seed", op, minimum=0)
    rng = np.random.default_rng(seed)
    grid = np.concatenate([np.linspace(-limit, limit, 20001), rng.uniform(-10, 10, 1000)])
    grid = jnp.asarray(np.sort(grid), jnp.float32)
    out = {}
    for n in names:
        f = _BASIC[n]
        y, slopes = jax.jit(lambda g, f=f: (f(g), jax.vmap(jax.grad(f))(g)))(grid)
        y, slopes = np.asarray(y, np.float64), np.asarray(slopes, np.float64)
        plus, minus = float(f(jnp.float32(eps))), float(f(jnp.float32(-eps)))
        near = abs(plus - eps) <= 0.01 * eps and abs(minus + eps) <= 0.01 * eps
        out[n] = {
            "monotone": bool(np.all(np.diff(y) >= 0) and np.all(slopes >= 0)),
            "near_identity": bool(near),
            "bounded": bool(max(abs(y.min()), abs(y.max())) <= 1.0),
            "f0": float(f(jnp.float32(0.0))),
            "slope0": float(jax.grad(f)(jnp.float32(0.0))),
            "min": float(y.min()),
            "max": float(y.max()),
            "min_slope": float(slopes.min()),
        }
    return out


def activation_convergence(
    *,
    activations: Sequence[str] = tuple(CONVERGENCE_ACTIVATIONS),
    hidden: int = 64,
    depth: int = 2,
    learning_rate: float = 0.5,
    batch_size: int = 32,
    steps: int = 150,
    target: float = 1.0,
    monitor: int = 256,
    seed: int = 0,
) -> dict[str, dict]:
    """Steps of SGD to a target training loss, per hidden activation, same task and same init.

    .. math:: T(f) = \\min\\{t : L_{train}(\\theta_t) \\le \\text{target}\\},\\quad
              \\theta_0 \\text{ identical for every } f

    An MLP ``64 → hidden × depth → 10`` on standardised digits (zero-mean inputs, so only
    the hidden activations differ in their mean), LeCun-normal weights drawn from the same key
    for every activation, plain SGD on the same batches. The study guide (为什么tanh激活函数会比
    sigmoid激活函数的表现好) gives two reasons: tanh is zero-centred, and its derivative reaches
    1 where sigmoid's reaches 1/4. The pairs below separate them:

    * ``shifted_tanh = tanh + 1`` has tanh's derivative but mean ≈ 1: tanh vs shifted_tanh is
      the effect of centring alone;
    * ``centred_sigmoid = sigmoid − ½`` has sigmoid's derivative but mean 0: centred_sigmoid
      vs tanh (``tanh(x) = 2·sigmoid(2x) − 1``) is the effect of the slope alone.

    Args:
      activations: names from :data:`CONVERGENCE_ACTIVATIONS`.
      hidden: hidden width.
      depth: hidden layers.
      learning_rate: SGD step size.
      batch_size: examples per step (the same batches for every activation).
      steps: maximum steps.
      target: training-loss target (the loss starts near ``ln 10 ≈ 2.30``).
      monitor: training examples on which the loss is evaluated after every step.
      seed: seeds the init, the batches and the split.

    Returns:
      ``{"steps_to_target": {name: int or None}, "loss": {name: (steps,) training loss (on the
      first ``monitor`` training digits) after each step}, "val_accuracy": {name: float}}``
      (``None``: not reached within ``steps``).

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: an unknown activation, no activation, a size or count below 1, a
        non-positive ``learning_rate``, a non-finite ``target``, a negative ``seed``.

    Example:
      >>> r = activation_convergence(activations=("tanh",), steps=20)
      >>> r["loss"]["tanh"].shape
      (20,)
    """
    op = "activation_convergence"
    check_choices(activations, CONVERGENCE_ACTIVATIONS, "activations", op, entry="activation")
    check_counts(
        op, hidden=hidden, depth=depth, batch_size=batch_size, steps=steps, monitor=monitor
    )
    check_positive(learning_rate, "learning_rate", op)
    check_real(target, "target", op, finite=True)
    check_int(seed, "seed", op, minimum=0)
    x, y, xv, yv = (jnp.asarray(a) for a in standardized_digits(seed))
    params0 = init_mlp(jax.random.key(seed), [x.shape[1], *[hidden] * depth, 10], "lecun")
    batches = jax.random.randint(jax.random.key(seed + 1), (steps, batch_size), 0, x.shape[0])
    opt = optax.sgd(learning_rate)
    branches = [CONVERGENCE_ACTIVATIONS[n] for n in activations]

    @jax.jit
    def train(p, which):  # one compiled program; `which` selects the activation
        def act(z):
            return jax.lax.switch(which, branches, z)

        def loss(p, xb, yb):
            return softmax_cross_entropy(mlp_apply(p, xb, act), yb)

        def step(carry, idx):
            p, s = carry
            g = jax.grad(loss)(p, x[idx], y[idx])
            u, s = opt.update(g, s)
            p = optax.apply_updates(p, u)
            return (p, s), loss(p, x[:monitor], y[:monitor])

        (p, _), curve = jax.lax.scan(step, (p, opt.init(p)), batches)
        return curve, jnp.mean(jnp.argmax(mlp_apply(p, xv, act), -1) == yv)

    out = {"steps_to_target": {}, "loss": {}, "val_accuracy": {}}
    for i, name in enumerate(activations):
        curve, acc = train(params0, i)
        curve = np.asarray(curve)
        out["loss"][name] = curve
        out["steps_to_target"][name] = first_below(curve, target)
        out["val_accuracy"][name] = float(acc)
    return out


def relu_sparsity(
    *,
    depth: int = 3,
    width: int = 128,
    batch_size: int = 256,
    repeats: int = 20,
    seed: int = 0,
) -> dict[str, dict]:
    """Fraction of exactly-zero hidden activations, and the time of a training step, per activation.

    .. math:: s_l = \\frac{\\#\\{(i, j) : a^{(l)}_{ij} = 0\\}}{B \\cdot \\text{width}}

    An MLP on a batch of digits at initialisation (He-normal weights, zero biases, the same
    draw for every activation). With weights symmetric about 0 every pre-activation is
    symmetric, so half of the ReLU units are exactly 0 on average (the guide's 稀疏性); sigmoid
    and tanh are never exactly 0 for a non-zero input. The time of one jitted forward+backward
    step is measured (median of ``repeats``), reported, never asserted: on a CPU all three
    are memory-bound and close; the guide's "ReLU is cheaper" holds per element
    (a comparison vs an exponential).

    Args:
      depth: hidden layers.
      width: hidden width.
      batch_size: digits in the batch.
      repeats: timed repetitions (after one compiling call).
      seed: seeds the init and the split.

    Returns:
      ``{"zero_fraction": {act: (depth,)}, "step_time": {act: seconds}}`` for ``relu``,
      ``sigmoid`` and ``tanh``.

    Raises:
      TypeError: an argument that is not an int.
      ValueError: a size or count below 1, a negative ``seed``.

    Example:
      >>> r = relu_sparsity(depth=1, repeats=1)
      >>> r["zero_fraction"]["sigmoid"].tolist()
      [0.0]
    """
    op = "relu_sparsity"
    check_counts(op, depth=depth, width=width, batch_size=batch_size, repeats=repeats)
    check_int(seed, "seed", op, minimum=0)
    x, y = digits(seed).train
    x, y = jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])
    params = init_mlp(jax.random.key(seed), [x.shape[1], *[width] * depth, 10], "he")
    out = {"zero_fraction": {}, "step_time": {}}
    for name, act in (("relu", relu), ("sigmoid", sigmoid), ("tanh", tanh)):
        a, fractions = x, []
        for w, b in params[:-1]:
            a = act(a @ w + b)
            fractions.append(float(jnp.mean(a == 0)))
        out["zero_fraction"][name] = np.asarray(fractions)

        def loss(p, act=act):
            return softmax_cross_entropy(mlp_apply(p, x, act), y)

        step = jax.jit(jax.grad(loss))
        jax.block_until_ready(step(params))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(step(params))
            times.append(time.perf_counter() - t0)
        out["step_time"][name] = float(np.median(times))
    return out


def linear_output_regression(
    *, hidden: int = 64, steps: int = 400, learning_rate: float = 1e-2, seed: int = 0
) -> dict[str, dict | float]:
    """Regression of the digit's value: a linear output layer against bounded ones.

    .. math:: \\mathrm{MSE}(f) \\ge \\frac1N \\sum_i \\operatorname{dist}(y_i, f(\\mathbb{R}))^2

    The target is the digit itself as a real number, ``y ∈ {0, …, 9}``. A network whose output
    passes through sigmoid (range (0, 1)) or tanh ((−1, 1)) cannot go below the bound above,
    whatever its weights (about 20 here); a linear (identity) output can. The guide (什么时候
    可以用线性激活函数): the output layer of a regression is where a linear activation belongs.
    In the *hidden* layer a linear activation makes the whole network affine (erratum 8,
    docs/errata.md): its error cannot go below least squares on the pixels, which is computed
    here with ``numpy.linalg.lstsq``; a ReLU hidden layer can.

    Args:
      hidden: hidden width of the one-hidden-layer MLPs.
      steps: full-batch Adam steps.
      learning_rate: Adam's step size.
      seed: seeds the init and the split.

    Returns:
      ``{"mse": {"relu_linear", "relu_sigmoid", "relu_tanh", "linear_linear": float},
      "bound": {"sigmoid", "tanh": float}, "lstsq_mse": float}`` (keys
      ``hidden-activation_output-activation``; training-set MSE).

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: ``hidden`` or ``steps`` below 1, a non-positive ``learning_rate``, a
        negative ``seed``.

    Example:
      >>> r = linear_output_regression(steps=5)
      >>> r["mse"]["relu_sigmoid"] >= r["bound"]["sigmoid"]
      True
    """
    op = "linear_output_regression"
    check_counts(op, hidden=hidden, steps=steps)
    check_positive(learning_rate, "learning_rate", op)
    check_int(seed, "seed", op, minimum=0)
    x, labels, _, _ = standardized_digits(seed)
    y = labels.astype(np.float32)
    design = np.concatenate([x, np.ones((len(x), 1))], 1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    lstsq_mse = float(np.mean((design @ coef - y) ** 2))
    bound = {
        "sigmoid": float(np.mean(np.maximum(y - 1, 0) ** 2 + np.maximum(-y, 0) ** 2)),
        "tanh": float(np.mean(np.maximum(y - 1, 0) ** 2 + np.maximum(-1 - y, 0) ** 2)),
    }
    identity = lambda z: z  # noqa: E731 - the linear activation
    hidden_acts, out_acts = [relu, identity], [identity, sigmoid, tanh]
    variants = {  # (hidden, output) indices into the lists above
        "relu_linear": (0, 0),
        "relu_sigmoid": (0, 1),
        "relu_tanh": (0, 2),
        "linear_linear": (1, 0),
    }
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    params0 = init_mlp(jax.random.key(seed), [x.shape[1], hidden, 1], "he")
    opt = optax.adam(learning_rate)

    @jax.jit
    def train(p, h, o):  # one compiled program for every variant
        def loss(p):
            out = mlp_apply(
                p,
                xj,
                lambda z: jax.lax.switch(h, hidden_acts, z),
                out_act=lambda z: jax.lax.switch(o, out_acts, z),
            )
            return l2_loss(out[:, 0], yj)

        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = opt.update(g, s)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), None, length=steps)
        return loss(p)

    mse = {name: float(train(params0, h, o)) for name, (h, o) in variants.items()}
    return {"mse": mse, "bound": bound, "lstsq_mse": lstsq_mse}


def pointwise_conv_nonlinearity(
    *, channels: Sequence[int] = (8, 16, 16, 8), size: int = 8, batch: int = 4, seed: int = 0
) -> dict[str, float]:
    """A stack of 1×1 convolutions is one 1×1 convolution unless an activation follows each.

    .. math:: \\mathrm{conv}_{1×1}(\\mathrm{conv}_{1×1}(x, W_1), W_2)
              = \\mathrm{conv}_{1×1}(x, W_1 W_2),\\qquad
              \\delta(f) = \\frac{\\lVert f(a + b) - f(a) - f(b) \\rVert}{\\lVert f(a + b) \\rVert}

    The guide (1×1卷积的作用, item 3) credits the 1×1 convolution with "adding non-linearity";
    the non-linearity comes from the activation after it. Without one, the stack equals the
    single 1×1 convolution with the product kernel (``composed_error``, float32 rounding) and
    is additive (``additivity_defect`` ≈ 0); with a ReLU after each convolution it is not.
    Built on :func:`dlref.conv` and :func:`dlref.relu`.

    Args:
      channels: channel counts ``C_0 → C_1 → … → C_L`` of the stack.
      size: height and width of the random inputs.
      batch: images per input.
      seed: seeds inputs and kernels.

    Returns:
      ``{"composed_error", "additivity_linear", "additivity_relu"}``: relative errors.

    Raises:
      TypeError: an argument (or an entry of ``channels``) that is not an int.
      ValueError: fewer than 2 channel counts, a count or size below 1, a negative ``seed``.

    Example:
      >>> r = pointwise_conv_nonlinearity()
      >>> r["additivity_linear"] < 1e-5 < 0.1 < r["additivity_relu"]
      True
    """
    op = "pointwise_conv_nonlinearity"
    check_ints(channels, "channels", op, min_length=2)
    check_counts(op, size=size, batch=batch)
    check_int(seed, "seed", op, minimum=0)
    keys = jax.random.split(jax.random.key(seed), len(channels) + 1)
    ws = [
        jax.random.normal(k, (1, 1, a, b)) / math.sqrt(a)
        for k, a, b in zip(keys[:-2], channels[:-1], channels[1:], strict=True)
    ]
    a, b = jax.random.normal(keys[-1], (2, batch, size, size, channels[0]))

    def stack(x, act):
        for w in ws:
            x = act(conv(x, w))
        return x

    def rel(u, v):
        return jnp.linalg.norm(u - v) / jnp.linalg.norm(v)

    @jax.jit
    def measure(a, b):
        identity = lambda z: z  # noqa: E731
        product = ws[0][0, 0]
        for w in ws[1:]:
            product = product @ w[0, 0]
        single = conv(a, product[None, None])

        def defect(act):
            return rel(stack(a, act) + stack(b, act), stack(a + b, act))

        return rel(stack(a, identity), single), defect(identity), defect(relu)

    composed, linear, nonlinear = measure(a, b)
    return {
        "composed_error": float(composed),
        "additivity_linear": float(linear),
        "additivity_relu": float(nonlinear),
    }
