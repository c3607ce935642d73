r"""Dropout: inverted (Bernoulli) dropout and Gaussian (multiplicative-noise) dropout.

Both are the identity in inference (``train=False``) and preserve the expectation in training:
:math:`\mathbb{E}[y] = x`. Randomness comes only from the ``key`` argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dlref._checks import check_floating, check_in_range

__all__ = ["dropout", "gaussian_dropout"]


def _check_common(x: Any, rate: Any, train: Any, op: str) -> jax.Array:
    if not isinstance(train, bool):
        raise TypeError(
            f"{op}: train must be a Python bool (it selects the code path), got {train!r}"
        )
    x = jnp.asarray(x)
    check_floating(x, "x", op)
    check_in_range(rate, 0.0, 1.0, "rate", op, hi_closed=False)
    return x


def _is_zero(rate: Any) -> bool:
    return not isinstance(rate, jax.core.Tracer) and float(rate) == 0.0


def _noise_shape(shape: tuple[int, ...], broadcast_dims: Sequence[int], op: str) -> tuple:
    out = list(shape)
    for d in broadcast_dims:
        if isinstance(d, bool) or not isinstance(d, int) or not -len(shape) <= d < len(shape):
            raise ValueError(
                f"{op}: broadcast_dims must be axes of x (rank {len(shape)}), "
                f"got {broadcast_dims!r}"
            )
        out[d] = 1
    return tuple(out)


def dropout(
    key: jax.Array,
    x: jax.Array,
    rate: float,
    *,
    train: bool = True,
    broadcast_dims: Sequence[int] = (),
) -> jax.Array:
    r"""Inverted dropout: zero each unit with probability ``rate``, scale the kept ones.

    .. math::
        y = \frac{m \odot x}{1 - p},\qquad m_i \sim \text{Bernoulli}(1 - p),

    so :math:`\mathbb{E}[y] = x` and, for :math:`x = 1`, :math:`\mathrm{Var}[y] = p/(1 - p)`.
    In inference (``train=False``) and for ``rate = 0`` it is the identity.

    Matches flax's ``nnx.Dropout(rate, broadcast_dims=...)`` called with the same key
    (``rngs=key``) bit for bit (the mask is ``jax.random.bernoulli(key, 1 - rate, shape)``),
    and PyTorch's ``F.dropout``. The seed describes dropout without the ``1/(1 - p)`` scaling
    (SEED_ERRATA 15): unscaled, the training-time expectation is :math:`(1 - p)\,x`.

    Under differentiation :math:`\partial y_i/\partial x_i = m_i/(1 - p)`.

    Args:
      key: a ``jax.random`` key; the same key gives the same mask.
      x: input of any shape, floating.
      rate: the drop probability :math:`p` in ``[0, 1)``.
      train: ``False`` returns ``x`` unchanged. A Python bool.
      broadcast_dims: axes along which the mask is shared (e.g. ``(1, 2)`` for channels-last
        spatial dropout of ``(N, H, W, C)``), as flax.

    Returns:
      ``y`` with the shape and dtype of ``x``.

    Raises:
      ValueError: ``rate`` outside ``[0, 1)``; ``broadcast_dims`` not axes of ``x``.
      TypeError: non-floating ``x``; ``train`` not a Python bool.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> y = dropout(jax.random.key(0), jnp.ones(8), 0.5)
      >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])   # kept units scaled by 2
      True

    References:
      Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
      JMLR 15, 2014, https://jmlr.org/papers/v15/srivastava14a.html.
    """
    op = "dropout"
    x = _check_common(x, rate, train, op)
    shape = _noise_shape(x.shape, broadcast_dims, op)
    if not train or _is_zero(rate):
        return x
    keep_prob = 1.0 - rate
    mask = jnp.broadcast_to(jax.random.bernoulli(key, p=keep_prob, shape=shape), x.shape)
    return lax.select(mask, x / jnp.asarray(keep_prob, x.dtype), jnp.zeros_like(x))


def gaussian_dropout(
    key: jax.Array,
    x: jax.Array,
    rate: float,
    *,
    train: bool = True,
) -> jax.Array:
    r"""Gaussian dropout: multiply each unit by independent :math:`\mathcal{N}(1, p/(1 - p))` noise.

    .. math::
        y = x \odot \xi,\qquad \xi_i = 1 + \sqrt{\tfrac{p}{1 - p}}\, z_i,\quad
        z_i \sim \mathcal{N}(0, 1),

    which has the same mean (:math:`x`) and variance (:math:`x^2 p/(1 - p)`) as inverted
    :func:`dropout`. Identity in inference and for ``rate = 0``. Matches Keras'
    ``GaussianDropout(rate)``. The seed suggests it as the variance-robust alternative to
    dropout before batch norm; the seed gives no formula (SEED_ERRATA 15).

    Under differentiation :math:`\partial y_i/\partial x_i = \xi_i`.

    Args:
      key: a ``jax.random`` key.
      x: input of any shape, floating.
      rate: :math:`p` in ``[0, 1)``; the noise variance is ``rate / (1 - rate)``.
      train: ``False`` returns ``x`` unchanged. A Python bool.

    Returns:
      ``y`` with the shape and dtype of ``x``.

    Raises:
      ValueError: ``rate`` outside ``[0, 1)``.
      TypeError: non-floating ``x``; ``train`` not a Python bool.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.array([1.0, 2.0])
      >>> bool(jnp.all(gaussian_dropout(jax.random.key(0), x, 0.5, train=False) == x))
      True

    References:
      Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
      JMLR 15, 2014, section 10 (multiplicative Gaussian noise).
    """
    op = "gaussian_dropout"
    x = _check_common(x, rate, train, op)
    if not train or _is_zero(rate):
        return x
    std = jnp.sqrt(jnp.asarray(rate, x.dtype) / (1 - jnp.asarray(rate, x.dtype)))
    noise = 1 + std * jax.random.normal(key, x.shape, x.dtype)
    return x * noise
