r"""Activation functions: sigmoid, tanh, relu, leaky_relu, softplus, softmax, log_softmax.

Every function here is written from its formula in a form that neither overflows nor loses its
gradient for large inputs (``|x|`` up to ``1e4`` and beyond), matches the ``jax.nn`` function of
the same name to float rounding, keeps the input's floating dtype (float64 stays float64,
bfloat16 stays bfloat16) and raises ``TypeError`` for a non-floating input (``jax.nn`` would
silently compute on integers). NaN in the input gives NaN in the output, as in ``jax.nn``: no
comparison or clamp here maps NaN to a number.

The non-smooth ones pin their subgradient at the kink, the same one ``jax.nn`` uses:
``relu'(0) = 0`` and ``leaky_relu'(0) = 1``.

Why a *non-linear* activation at all: a composition of affine maps is affine, so without one a
network of any depth computes a single affine map (the study guide's "when the activation is linear
a two-layer network can approximate almost all functions" has the word backwards, erratum 8
(docs/errata.md); the universal approximation theorem needs a non-polynomial activation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from dlref._checks import as_array, check_floating, check_int, check_real

__all__ = [
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "softplus",
    "softmax",
    "log_softmax",
]


def _float_input(x, op: str) -> jax.Array:
    x = as_array(x, "x", op)
    check_floating(x, "x", op)
    return x


def _check_axis(x: jax.Array, axis, op: str) -> int:
    axis = check_int(axis, "axis", op)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"{op}: axis must lie in [{-x.ndim}, {x.ndim}) for an input of rank {x.ndim}, "
            f"got {axis!r}"
        )
    return axis


# --------------------------------------------------------------------------------------------
# sigmoid


@jax.custom_jvp
def _sigmoid(x: jax.Array) -> jax.Array:
    # exp(-|x|) lies in (0, 1], so neither branch overflows; the x < 0 branch is the same
    # formula multiplied through by e^x, which keeps full relative precision for x << 0.
    e = jnp.exp(-jnp.abs(x))
    one = jnp.ones_like(x)
    return jnp.where(x >= 0, one / (one + e), e / (one + e))


@_sigmoid.defjvp
def _sigmoid_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    # σ'(x) = σ(x)(1 − σ(x)) = e / (1 + e)² with e = exp(−|x|): the second form keeps full
    # relative precision for large |x|, where 1 − σ(x) would cancel.
    e = jnp.exp(-jnp.abs(x))
    return _sigmoid(x), t * (e / ((1 + e) * (1 + e)))


def sigmoid(x) -> jax.Array:
    r"""Logistic sigmoid, computed without overflow.

    .. math::
        \sigma(x) = \frac{1}{1 + e^{-x}} =
        \begin{cases} 1 / (1 + e^{-|x|}) & x \ge 0 \\
                      e^{-|x|} / (1 + e^{-|x|}) & x < 0 \end{cases},
        \qquad \sigma'(x) = \sigma(x)\,(1 - \sigma(x)) \in (0, \tfrac14]

    Only ``exp(-|x|) ≤ 1`` is ever evaluated, so ``x = ±1e4`` gives ``1`` and ``0`` with
    finite gradients. The derivative reaches its maximum 1/4 at ``x = 0`` and is never 0 for
    finite x in exact arithmetic (the study guide writes the range as [0, 0.25], erratum 9
    (docs/errata.md)); a product of k such factors — what backpropagation through k sigmoid layers
    multiplies — is at most ``0.25**k``: the vanishing gradient.

    Matches ``jax.nn.sigmoid`` (``lax.logistic``); PyTorch's ``torch.sigmoid``.

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``, values in [0, 1].

    Raises:
      TypeError: if ``x`` does not have a floating dtype.

    Example:
      >>> float(sigmoid(jnp.array(0.0)))  # 1 / (1 + e^0)
      0.5
    """
    return _sigmoid(_float_input(x, "sigmoid"))


# --------------------------------------------------------------------------------------------
# tanh


@jax.custom_jvp
def _tanh(x: jax.Array) -> jax.Array:
    # tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) in (0, 1]; -expm1 keeps the
    # relative precision of 1 - e for small |x|.
    e = jnp.exp(-2 * jnp.abs(x))
    return jnp.sign(x) * (-jnp.expm1(-2 * jnp.abs(x))) / (1 + e)


@_tanh.defjvp
def _tanh_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    # tanh'(x) = 1 − tanh²(x) = 4e / (1 + e)² with e = exp(−2|x|), without the cancellation.
    e = jnp.exp(-2 * jnp.abs(x))
    return _tanh(x), t * (4 * e / ((1 + e) * (1 + e)))


def tanh(x) -> jax.Array:
    r"""Hyperbolic tangent, computed without overflow.

    .. math::
        \tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}
                 = \operatorname{sign}(x)\,\frac{1 - e^{-2|x|}}{1 + e^{-2|x|}},
        \qquad \tanh'(x) = 1 - \tanh^2(x) \in (0, 1]

    The derivative reaches 1 at ``x = 0`` and is never 0 for finite x in exact arithmetic
    (the study guide writes [0, 1], erratum 9 (docs/errata.md)). ``tanh(x) = 2σ(2x) − 1``.

    Matches ``jax.nn.tanh`` (``jnp.tanh``); PyTorch's ``torch.tanh``.

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``, values in [-1, 1].

    Raises:
      TypeError: if ``x`` does not have a floating dtype.

    Example:
      >>> round(float(tanh(jnp.array(1.0))), 6)  # (e - 1/e) / (e + 1/e)
      0.761594
    """
    return _tanh(_float_input(x, "tanh"))


# --------------------------------------------------------------------------------------------
# relu and leaky_relu


@jax.custom_jvp
def _relu(x: jax.Array) -> jax.Array:
    return jnp.maximum(x, jnp.zeros_like(x))


@_relu.defjvp
def _relu_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    # relu'(0) = 0, as jax.nn.relu (jnp.maximum alone would give 1/2 at the tie).
    return _relu(x), jnp.where(x > 0, t, jnp.zeros_like(t))


def relu(x) -> jax.Array:
    r"""Rectified linear unit.

    .. math::
        \mathrm{relu}(x) = \max(x, 0), \qquad
        \mathrm{relu}'(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}

    Under differentiation ``relu'(0) = 0`` (the subgradient ``jax.nn.relu`` and PyTorch use;
    any value in [0, 1] is a valid subgradient).

    Matches ``jax.nn.relu``; PyTorch's ``torch.relu``.

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``.

    Raises:
      TypeError: if ``x`` does not have a floating dtype.

    Example:
      >>> relu(jnp.array([-2.0, 0.0, 3.0])).tolist()
      [0.0, 0.0, 3.0]
    """
    return _relu(_float_input(x, "relu"))


def leaky_relu(x, negative_slope=0.01) -> jax.Array:
    r"""Leaky rectified linear unit.

    .. math::
        \mathrm{leaky\_relu}(x) = \begin{cases} x & x \ge 0 \\ \alpha x & x < 0 \end{cases},
        \qquad \alpha = \text{negative\_slope}

    Under differentiation ``leaky_relu'(0) = 1``: the point ``x = 0`` belongs to the
    ``x ≥ 0`` branch, as in ``jax.nn.leaky_relu`` (PyTorch's backward tests ``x > 0`` and so
    gives α at 0; both are valid subgradients, dlref follows ``jax``).

    Matches ``jax.nn.leaky_relu``; PyTorch's ``F.leaky_relu(x, negative_slope)``.

    Args:
      x: floating array of any shape.
      negative_slope: the slope α for negative inputs (a real number or a real scalar array).

    Returns:
      An array of the shape and dtype of ``x``.

    Raises:
      TypeError: if ``x`` does not have a floating dtype, or ``negative_slope`` is not a real
        number (a string such as ``"0.1"``, a bool, ``None``).
      ValueError: if ``negative_slope`` is an array of rank > 0.

    Example:
      >>> leaky_relu(jnp.array([-2.0, 3.0]), 0.5).tolist()  # [0.5 * -2, 3]
      [-1.0, 3.0]
    """
    x = _float_input(x, "leaky_relu")
    check_real(negative_slope, "negative_slope", "leaky_relu")
    return jnp.where(x >= 0, x, (negative_slope * x).astype(x.dtype))


# --------------------------------------------------------------------------------------------
# softplus


@jax.custom_jvp
def _softplus(x: jax.Array) -> jax.Array:
    return jnp.maximum(x, jnp.zeros_like(x)) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _softplus(x), t * _sigmoid(x)


def softplus(x) -> jax.Array:
    r"""Softplus, a smooth relu, computed without overflow.

    .. math::
        \mathrm{softplus}(x) = \log(1 + e^{x}) = \max(x, 0) + \log(1 + e^{-|x|}),
        \qquad \mathrm{softplus}'(x) = \sigma(x)

    Only ``exp(-|x|) ≤ 1`` is evaluated, so ``softplus(1e4) = 1e4`` and
    ``softplus(-1e4) = 0`` with gradients 1 and 0.

    Matches ``jax.nn.softplus`` (``jnp.logaddexp(x, 0)``); PyTorch's ``F.softplus`` with
    ``beta=1`` and ``threshold=∞`` (PyTorch's default ``threshold=20`` returns ``x`` itself
    above 20, which differs from this by less than ``e^{-20}``).

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``, values in [0, ∞).

    Raises:
      TypeError: if ``x`` does not have a floating dtype.

    Example:
      >>> round(float(softplus(jnp.array(0.0))), 6)  # log 2
      0.693147
    """
    return _softplus(_float_input(x, "softplus"))


# --------------------------------------------------------------------------------------------
# softmax and log_softmax


def _shifted(x: jax.Array, axis: int) -> jax.Array:
    # softmax is invariant to adding a constant along `axis`, so the max is a constant for
    # differentiation: stop_gradient keeps it out of the backward pass.
    return x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))


def softmax(x, axis=-1) -> jax.Array:
    r"""Softmax along ``axis``, with the maximum subtracted first.

    .. math::
        \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}
                              = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},\quad m = \max_j x_j;
        \qquad \frac{\partial\,\mathrm{softmax}_i}{\partial x_j} = s_i(\delta_{ij} - s_j)

    After the shift every exponent is ≤ 0 and the largest is exactly 0, so the sum is ≥ 1:
    no overflow, no division by zero, for any finite input. An empty input (a zero-length
    ``axis`` included) gives an empty output, as ``jax.nn.softmax`` does. NaN in a slice gives
    NaN for that whole slice (its maximum is NaN), as in ``jax.nn``.

    Matches ``jax.nn.softmax``; PyTorch's ``torch.softmax(x, dim=axis)``.

    Args:
      x: floating array with at least one dimension.
      axis: the axis to normalise over (an int).

    Returns:
      An array of the shape and dtype of ``x``; entries along ``axis`` are ≥ 0 and sum to 1.

    Raises:
      TypeError: if ``x`` does not have a floating dtype, or ``axis`` is not an int.
      ValueError: if ``axis`` is out of range for ``x``.

    Example:
      >>> softmax(jnp.array([0.0, 0.0, 0.0, 0.0])).tolist()  # uniform over 4 classes
      [0.25, 0.25, 0.25, 0.25]
    """
    x = _float_input(x, "softmax")
    axis = _check_axis(x, axis, "softmax")
    if x.size == 0:  # nothing to normalise; jnp.max has no identity for an empty axis
        return x
    e = jnp.exp(_shifted(x, axis))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1) -> jax.Array:
    r"""Log of the softmax along ``axis``, computed without forming the softmax.

    .. math::
        \mathrm{log\_softmax}(x)_i = x_i - \log\sum_j e^{x_j}
                                   = (x_i - m) - \log\sum_j e^{x_j - m},\quad m = \max_j x_j

    The log-sum-exp of the shifted input lies in [0, log n], so the result is finite for any
    finite input (``log(softmax(x))`` would give ``-inf`` once a probability underflows). An
    empty input gives an empty output and NaN propagates per slice, as in ``jax.nn``.

    Matches ``jax.nn.log_softmax``; PyTorch's ``torch.log_softmax(x, dim=axis)``.

    Args:
      x: floating array with at least one dimension.
      axis: the axis to normalise over (an int).

    Returns:
      An array of the shape and dtype of ``x``, values ≤ 0.

    Raises:
      TypeError: if ``x`` does not have a floating dtype, or ``axis`` is not an int.
      ValueError: if ``axis`` is out of range for ``x``.

    Example:
      >>> round(float(log_softmax(jnp.array([0.0, 0.0]))[0]), 6)  # log(1/2)
      -0.693147
    """
    x = _float_input(x, "log_softmax")
    axis = _check_axis(x, axis, "log_softmax")
    if x.size == 0:
        return x
    shifted = _shifted(x, axis)
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))
