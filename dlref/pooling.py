r"""Pooling by its definition, with PyTorch's ceil_mode / count_include_pad and its backward rule.

Arrays are channels-last and batched: ``x: (N, *spatial, C)`` with 1, 2 or 3 spatial dims.
``window`` is an int or one int per spatial dim; with an int the spatial rank is
``x.ndim - 2``, with a tuple it is ``len(window)`` (and ``x`` must have that rank plus two).

Forward: a Python loop over the window's *taps* (never over pixels), each a strided slice of
the padded input, combined by ``max`` or ``+``. Each spatial output size is
:func:`dlref.shapes.conv_output_size` (with ``ceil_mode``, PyTorch's rule that a last window
starting inside the right padding is dropped).

Backward (``jax.custom_vjp``, written from the rule the study guide states — "upsample"):

* max: each window's cotangent goes to the **first** maximal element of the window in
  row-major order of its taps (the strict ``>`` of the forward loop keeps the earlier tap on
  ties, as PyTorch's CPU kernel does), accumulated over overlapping windows;
* average: each window's cotangent divided by the window's divisor goes to every counted
  element.

The transpose of a strided slice is ``lax.pad`` with interior padding ``s - 1``: that is how a
tap's contribution is put back in place, again without loops over pixels.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlref._checks import (
    accumulation_dtype,
    as_tuple,
    check_floating,
    check_rank,
    normalize_padding,
)
from dlref.shapes import conv_output_size

__all__ = ["max_pool", "avg_pool", "global_max_pool", "global_avg_pool"]


class _Geometry(NamedTuple):
    """Static description of a pooling (hashable, so it can be a ``nondiff_argnum``)."""

    sizes: tuple[int, ...]  # input spatial sizes
    window: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]  # the declared (lo, hi) padding
    extra: tuple[int, ...]  # ceil_mode overhang past the declared high padding
    out: tuple[int, ...]


def _geometry(x, window, stride, padding, dilation, ceil_mode, op) -> _Geometry:
    check_floating(x, "x", op)
    if isinstance(window, int) and not isinstance(window, bool):
        nd = jnp.ndim(x) - 2
        check_rank(x, (3, 4, 5), "x (N, *spatial, C)", op)
    else:
        nd = len(window) if isinstance(window, tuple | list) else 0
        if nd not in (1, 2, 3):
            raise ValueError(f"{op}: window must be an int or a tuple of 1-3 ints, got {window!r}")
        check_rank(x, nd + 2, f"x (N, {nd} spatial dims, C)", op)
    window = as_tuple(window, nd, "window", op, minimum=1)
    stride = window if stride is None else as_tuple(stride, nd, "stride", op, minimum=1)
    dilation = as_tuple(dilation, nd, "dilation", op, minimum=1)
    sizes = tuple(jnp.shape(x)[1:-1])
    padding = normalize_padding(
        padding, nd, op, sizes=sizes, window=window, stride=stride, dilation=dilation
    )
    for i, (n, k, d, (lo, hi)) in enumerate(zip(sizes, window, dilation, padding)):
        if max(lo, hi) > k // 2:
            raise ValueError(
                f"{op}: padding {padding} must be at most half the window {window} in each dim "
                f"(PyTorch's rule pad <= k // 2), got {(lo, hi)} along spatial dim {i}"
            )
        if d * (k - 1) + 1 > n + lo + hi:
            raise ValueError(
                f"{op}: the (dilated) window d*(k-1)+1={d * (k - 1) + 1} is larger than the "
                f"padded input n+lo+hi={n}+{lo}+{hi}={n + lo + hi} along spatial dim {i}"
            )
    out = conv_output_size(sizes, window, stride, padding, dilation, ceil_mode=ceil_mode)
    extra = tuple(
        max(0, (o - 1) * s + d * (k - 1) + 1 - (n + lo + hi))
        for n, k, s, d, (lo, hi), o in zip(sizes, window, stride, dilation, padding, out)
    )
    return _Geometry(sizes, window, stride, dilation, padding, extra, out)


def _starts(g: _Geometry, i: int) -> np.ndarray:
    """Input index (negative inside the low padding) where each window starts along dim i."""
    return np.arange(g.out[i]) * g.stride[i] - g.padding[i][0]


def _pad(x, g: _Geometry, value) -> jax.Array:
    cfg = [(0, 0, 0), *((lo, hi + e, 0) for (lo, hi), e in zip(g.padding, g.extra)), (0, 0, 0)]
    return lax.pad(x, jnp.asarray(value, x.dtype), cfg)


def _taps(xp, g: _Geometry):
    """Yield ``(start, slice)`` per window tap in row-major order: the (N, *out, C) pixels that
    every window sees through that tap."""
    n, c = xp.shape[0], xp.shape[-1]
    for tap in itertools.product(*(range(k) for k in g.window)):
        start = tuple(t * d for t, d in zip(tap, g.dilation))
        limit = tuple(b + (o - 1) * s + 1 for b, o, s in zip(start, g.out, g.stride))
        yield start, lax.slice(xp, (0, *start, 0), (n, *limit, c), (1, *g.stride, 1))


def _untap(v, start, g: _Geometry, padded: tuple[int, ...]) -> jax.Array:
    """The transpose of one tap's strided slice: put ``v`` back at ``start + o * s``."""
    cfg = [(0, 0, 0)]
    for b, o, s, size in zip(start, g.out, g.stride, padded):
        cfg.append((b, size - b - (o - 1) * s - 1, s - 1))
    cfg.append((0, 0, 0))
    return lax.pad(v, jnp.zeros((), v.dtype), cfg)


def _scatter_taps(parts, g: _Geometry, n: int, c: int, dtype) -> jax.Array:
    """Sum the per-tap cotangents back into the padded input, then crop the padding."""
    padded = tuple(size + lo + hi + e for size, (lo, hi), e in zip(g.sizes, g.padding, g.extra))
    dxp = jnp.zeros((n, *padded, c), dtype)
    for start, v in parts:
        dxp = dxp + _untap(v, start, g, padded)
    lo = tuple(p[0] for p in g.padding)
    return lax.slice(dxp, (0, *lo, 0), (n, *(a + s for a, s in zip(lo, g.sizes)), c))


# --------------------------------------------------------------------------------------------
# max


def _max_and_argmax(x, g: _Geometry):
    best = first = None
    for t, (_, v) in enumerate(_taps(_pad(x, g, -jnp.inf), g)):
        if best is None:
            best, first = v, jnp.zeros(v.shape, jnp.int32)
        else:
            take = v > best  # strict: on ties the earlier tap (row-major) stays the argmax
            best = jnp.where(take, v, best)
            first = jnp.where(take, jnp.int32(t), first)
    return best, first


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool(x, g: _Geometry):
    return _max_and_argmax(x, g)[0]


def _max_pool_fwd(x, g):
    return _max_and_argmax(x, g)  # the residual is each window's first argmax (tap index)


def _max_pool_bwd(g, first, ct):
    acc = accumulation_dtype(ct.dtype)
    zero = jnp.zeros((), acc)
    parts = []
    for t, tap in enumerate(itertools.product(*(range(k) for k in g.window))):
        start = tuple(i * d for i, d in zip(tap, g.dilation))
        parts.append((start, jnp.where(first == t, ct.astype(acc), zero)))
    dx = _scatter_taps(parts, g, ct.shape[0], ct.shape[-1], acc)
    return (dx.astype(ct.dtype),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def _check_no_empty_window(g: _Geometry, op: str) -> None:
    """Raise if some window (possible with dilation) sees only padding: its max would be -inf."""
    for i, (n, k, d) in enumerate(zip(g.sizes, g.window, g.dilation)):
        pos = _starts(g, i)[:, None] + np.arange(k)[None, :] * d
        seen = ((pos >= 0) & (pos < n)).any(axis=1)
        if not seen.all():
            raise ValueError(
                f"{op}: window {int(np.argmin(seen))} along spatial dim {i} covers only padding "
                f"(window={g.window}, dilation={g.dilation}, padding={g.padding}); its max "
                f"would be -inf"
            )


def max_pool(x, window, *, stride=None, padding=0, dilation=1, ceil_mode=False) -> jax.Array:
    r"""Max pooling over 1, 2 or 3 spatial dims (padding counts as −∞).

    .. math::
        y[n, \mathbf{o}, c] = \max_{\mathbf{t}}\ x_{pad}[n,\ \mathbf{o} \odot \mathbf{s} +
        \mathbf{t} \odot \mathbf{d},\ c], \qquad
        \frac{\partial L}{\partial x[\mathbf{i}]} = \sum_{\mathbf{o}:\ \mathbf{i} =
        \text{first argmax of window } \mathbf{o}} \frac{\partial L}{\partial y[\mathbf{o}]}

    Matches ``lax.reduce_window(x, -inf, lax.max, ...)`` in value, and PyTorch's
    ``MaxPool1d/2d/3d`` (stride defaults to the window; ``ceil_mode``; dilation). Under
    differentiation each window's cotangent goes to its *first* maximal element in row-major
    order (PyTorch's rule). ``jax.grad`` of ``lax.reduce_window`` agrees wherever the maximum
    is unique; on ties its choice is backend-defined (it picked the first one on CPU in our
    tests), and it has no gradient at all with ``window_dilation`` — this one does.

    Args:
      x: ``(N, *spatial, C)`` floating input.
      window: window size; an int (spatial rank ``x.ndim - 2``) or one int per spatial dim.
      stride: int or tuple; ``None`` (default) means ``stride = window``.
      padding: int, per-dim ints, ``(lo, hi)`` pairs, ``"VALID"`` or ``"SAME"``; at most
        ``window // 2`` on each side (PyTorch's rule).
      dilation: spacing of the window's taps; int or tuple, >= 1.
      ceil_mode: round the output size up, dropping a last window that would start inside the
        right padding (PyTorch).

    Returns:
      ``(N, *out, C)`` in the input dtype, ``out`` from :func:`dlref.shapes.conv_output_size`.

    Raises:
      ValueError: bad rank; window, stride or dilation < 1; negative padding or padding over
        half the window; a dilated window larger than the padded input; a window that sees only
        padding; an unknown padding string.
      TypeError: non-floating ``x``; non-int window, stride, dilation or padding.

    Example:
      >>> x = jnp.array([1.0, 3.0, 3.0, 2.0, 5.0]).reshape(1, 5, 1)
      >>> max_pool(x, 2, ceil_mode=True)[0, :, 0]          # windows [1,3] [3,2] [5]
      Array([3., 3., 5.], dtype=float32)
      >>> jax.grad(lambda x: max_pool(x, 3, stride=1).sum())(x)[0, :, 0]   # first max wins
      Array([0., 2., 0., 0., 1.], dtype=float32)

    References:
      PyTorch ``torch.nn.MaxPool2d``, https://pytorch.org/docs/stable/generated/torch.nn.MaxPool2d.html.
    """
    op = "max_pool"
    x = jnp.asarray(x)
    g = _geometry(x, window, stride, padding, dilation, ceil_mode, op)
    _check_no_empty_window(g, op)
    return _max_pool(x, g)


# --------------------------------------------------------------------------------------------
# average


def _divisor(g: _Geometry, count_include_pad: bool) -> np.ndarray:
    """PyTorch's divisor, one factor per dim (the window is a box, so it factorises):
    ``end = min(start + k, n + p_hi)``; with padding counted ``end - start``, else
    ``min(end, n) - max(start, 0)``: the declared padding counts, the ceil overhang never."""
    div = np.ones((), np.int64)
    for i, (n, k, (_, hi)) in enumerate(zip(g.sizes, g.window, g.padding)):
        start = _starts(g, i)
        end = np.minimum(start + k, n + hi)
        size = end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0)
        div = np.multiply.outer(div, size)
    return div[None, ..., None]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _avg_pool(x, g: _Geometry, count_include_pad: bool):
    acc = accumulation_dtype(x.dtype)
    total = sum(v.astype(acc) for _, v in _taps(_pad(x, g, 0), g))
    return (total / _divisor(g, count_include_pad).astype(acc)).astype(x.dtype)


def _avg_pool_fwd(x, g, count_include_pad):
    return _avg_pool(x, g, count_include_pad), None


def _avg_pool_bwd(g, count_include_pad, _, ct):
    acc = accumulation_dtype(ct.dtype)
    share = ct.astype(acc) / _divisor(g, count_include_pad).astype(acc)
    parts = [
        (tuple(i * d for i, d in zip(tap, g.dilation)), share)
        for tap in itertools.product(*(range(k) for k in g.window))
    ]
    dx = _scatter_taps(parts, g, ct.shape[0], ct.shape[-1], acc)
    return (dx.astype(ct.dtype),)


_avg_pool.defvjp(_avg_pool_fwd, _avg_pool_bwd)


def avg_pool(
    x, window, *, stride=None, padding=0, ceil_mode=False, count_include_pad=True
) -> jax.Array:
    r"""Average pooling over 1, 2 or 3 spatial dims, with PyTorch's divisor.

    .. math::
        y[n, \mathbf{o}, c] = \frac{1}{D(\mathbf{o})} \sum_{\mathbf{t}}
            x_{pad}[n,\ \mathbf{o} \odot \mathbf{s} + \mathbf{t},\ c],\qquad
        D(\mathbf{o}) = \prod_{i} \big(\min(b_i + k_i,\ n_i + p_i^{hi}) - b_i\big)

    with ``b_i = o_i s_i - p_i^{lo}`` the window start. That is PyTorch's ``AvgPool*d`` C++
    rule: with ``count_include_pad=True`` the *declared* zero padding is counted but the extra
    region that ``ceil_mode`` adds past it is not; with ``count_include_pad=False`` only the
    input elements, ``min(end, n) - max(b, 0)`` per dim, are counted. Without ceil overhang
    and with padding counted, ``D = ∏ k_i``.

    Matches ``lax.reduce_window(x, 0, lax.add, ...) / D`` and PyTorch's ``AvgPool1d/2d/3d``
    (``divisor_override=None``); flax's ``nnx.avg_pool`` is the ``count_include_pad=True``,
    floor-mode case. Under differentiation each window's cotangent is spread evenly, ``1/D``
    each, over the elements it averaged (the padding's share is dropped).

    Args:
      x: ``(N, *spatial, C)`` floating input.
      window: window size; an int (spatial rank ``x.ndim - 2``) or one int per spatial dim.
      stride: int or tuple; ``None`` (default) means ``stride = window``.
      padding: int, per-dim ints, ``(lo, hi)`` pairs, ``"VALID"`` or ``"SAME"``; at most
        ``window // 2`` on each side (PyTorch's rule).
      ceil_mode: round the output size up, dropping a last window that would start inside the
        right padding (PyTorch).
      count_include_pad: count the declared zero padding in the divisor.

    Returns:
      ``(N, *out, C)`` in the input dtype (16-bit floats are summed in float32).

    Raises:
      ValueError: bad rank; window or stride < 1; negative padding or padding over half the
        window; a window larger than the padded input; an unknown padding string.
      TypeError: non-floating ``x``; non-int window, stride or padding.

    Example:
      >>> x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
      >>> # windows [pad,1,2] [2,3,4] [4,pad,(ceil overhang)]: divisors 3, 3, 2
      >>> avg_pool(x, 3, stride=2, padding=1, ceil_mode=True)[0, :, 0]
      Array([1., 3., 2.], dtype=float32)
      >>> avg_pool(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)[0, :, 0]
      Array([1.5, 3. , 4. ], dtype=float32)

    References:
      PyTorch ``torch.nn.AvgPool2d`` and ``aten/src/ATen/native/AvgPoolKernel.cpp``,
      https://pytorch.org/docs/stable/generated/torch.nn.AvgPool2d.html.
    """
    op = "avg_pool"
    x = jnp.asarray(x)
    g = _geometry(x, window, stride, padding, 1, ceil_mode, op)
    return _avg_pool(x, g, bool(count_include_pad))


# --------------------------------------------------------------------------------------------
# global


@jax.custom_vjp
def _global_max(x):
    return jnp.max(x, axis=1)


def _global_max_fwd(x):
    return jnp.max(x, axis=1), (jnp.argmax(x, axis=1), x.shape[1])


def _global_max_bwd(res, ct):
    first, p = res  # jnp.argmax returns the first maximum
    return (jnp.where(jnp.arange(p)[None, :, None] == first[:, None, :], ct[:, None, :], 0),)


_global_max.defvjp(_global_max_fwd, _global_max_bwd)


def _global_input(x, op):
    x = jnp.asarray(x)
    check_floating(x, "x", op)
    check_rank(x, (3, 4, 5), "x (N, *spatial, C)", op)
    return x


def global_max_pool(x) -> jax.Array:
    r"""Maximum over all spatial positions, per example and channel.

    .. math:: y[n, c] = \max_{\mathbf{i}} x[n, \mathbf{i}, c]

    Matches ``jnp.max(x, axis=spatial)`` in value and PyTorch's ``AdaptiveMaxPool(1)``. Under
    differentiation the cotangent goes to the first maximal element in row-major order (as
    :func:`max_pool`); ``jax.grad`` of ``jnp.max`` instead splits it evenly among ties.

    Args:
      x: ``(N, *spatial, C)`` with 1, 2 or 3 spatial dims.

    Returns:
      ``(N, C)`` in the input dtype.

    Raises:
      ValueError: rank not 3, 4 or 5.
      TypeError: non-floating ``x``.

    Example:
      >>> global_max_pool(jnp.array([[[1.0], [4.0], [4.0]]]))
      Array([[4.]], dtype=float32)
    """
    x = _global_input(x, "global_max_pool")
    n, c = x.shape[0], x.shape[-1]
    return _global_max(x.reshape(n, -1, c))


def global_avg_pool(x) -> jax.Array:
    r"""Mean over all spatial positions, per example and channel.

    .. math:: y[n, c] = \frac{1}{|\Omega|} \sum_{\mathbf{i} \in \Omega} x[n, \mathbf{i}, c]

    Matches ``jnp.mean(x, axis=spatial)``, flax/Keras global average pooling and PyTorch's
    ``AdaptiveAvgPool(1)``. The gradient is ``1/|Ω|`` everywhere (the average rule). 16-bit
    floats are summed in float32.

    Args:
      x: ``(N, *spatial, C)`` with 1, 2 or 3 spatial dims.

    Returns:
      ``(N, C)`` in the input dtype.

    Raises:
      ValueError: rank not 3, 4 or 5.
      TypeError: non-floating ``x``.

    Example:
      >>> global_avg_pool(jnp.array([[[1.0], [4.0], [4.0]]]))
      Array([[3.]], dtype=float32)
    """
    x = _global_input(x, "global_avg_pool")
    acc = accumulation_dtype(x.dtype)
    return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)), dtype=acc).astype(x.dtype)
