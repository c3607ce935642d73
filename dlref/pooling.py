r"""Pooling by its definition, with PyTorch's ceil_mode / count_include_pad and its backward rule.

Arrays are channels-last and batched: ``x: (N, *spatial, C)`` with 1, 2 or 3 spatial dims.
``window`` is an int or one int per spatial dim; with an int the spatial rank is
``x.ndim - 2``, with a tuple it is ``len(window)`` (and ``x`` must have that rank plus two).

Forward: a Python loop over the window's *taps* (never over pixels), each a strided slice of
the padded input, combined by ``max`` or ``+``. Each spatial output size is
:func:`dlref.shapes.conv_output_size` (with ``ceil_mode``, PyTorch's rule that a last window
starting inside the right padding is dropped).

Differentiation (the study guide's "upsample" rule, pooling section):

* average pooling is linear in ``x`` (a sum of strided slices times a constant ``1/D``), so
  jax differentiates it in both modes, to any order, with no rule of ours;
* max pooling is a ``jax.custom_jvp`` whose tangent is gathered at each window's **first**
  maximal element in row-major order of its taps (PyTorch's rule; a NaN counts as the
  maximum). That gather is linear, and jax transposes it into the scatter that reverse mode
  needs: each window's cotangent goes to that element, accumulated over overlapping windows.

:func:`max_pool_backward` and :func:`avg_pool_backward` write that scatter out explicitly
(the transpose of a strided slice is ``lax.pad`` with interior padding ``s - 1``); the tests
check that they equal what autodiff of the forward produces.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlref._checks import (
    accumulation_dtype,
    as_array,
    as_tuple,
    check_bool,
    check_floating,
    check_int,
    check_rank,
    normalize_padding,
)
from dlref.shapes import conv_output_size

__all__ = [
    "max_pool",
    "avg_pool",
    "global_max_pool",
    "global_avg_pool",
    "max_pool_backward",
    "avg_pool_backward",
]


class _Geometry(NamedTuple):
    """Static description of a pooling (hashable, so it can be a ``nondiff_argnum``)."""

    sizes: tuple[int, ...]  # input spatial sizes
    window: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]  # the declared (lo, hi) padding
    extra: tuple[int, ...]  # ceil_mode overhang past the declared high padding
    out: tuple[int, ...]


def _spatial_rank(x, window, op) -> int:
    if isinstance(window, tuple | list):
        nd = len(window)
        if nd not in (1, 2, 3):
            raise ValueError(f"{op}: window must be an int or a tuple of 1-3 ints, got {window!r}")
        check_rank(x, nd + 2, f"x (N, {nd} spatial dims, C)", op)
        return nd
    check_int(window, "window", op)  # TypeError for a bool, float or string
    return check_rank(x, (3, 4, 5), "x (N, *spatial, C)", op) - 2


def _geometry(x, window, stride, padding, dilation, ceil_mode, op) -> _Geometry:
    check_floating(x, "x", op)
    nd = _spatial_rank(x, window, op)
    window = as_tuple(window, nd, "window", op, minimum=1)
    stride = window if stride is None else as_tuple(stride, nd, "stride", op, minimum=1)
    dilation = as_tuple(dilation, nd, "dilation", op, minimum=1)
    ceil_mode = check_bool(ceil_mode, "ceil_mode", op)
    sizes = tuple(jnp.shape(x)[1:-1])
    if min(sizes) < 1:
        raise ValueError(
            f"{op}: x must have at least one element along every spatial dim, "
            f"got shape {jnp.shape(x)}"
        )
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


def _tap_offsets(g: _Geometry):
    """Each tap's offset ``t * d`` inside the window, in row-major order of the taps."""
    for tap in itertools.product(*(range(k) for k in g.window)):
        yield tuple(t * d for t, d in zip(tap, g.dilation))


def _pad(x, g: _Geometry, value) -> jax.Array:
    cfg = [(0, 0, 0), *((lo, hi + e, 0) for (lo, hi), e in zip(g.padding, g.extra)), (0, 0, 0)]
    return lax.pad(x, jnp.asarray(value, x.dtype), cfg)


def _taps(xp, g: _Geometry):
    """Yield one strided slice per window tap, in row-major order: the (N, *out, C) pixels that
    every window sees through that tap."""
    n, c = xp.shape[0], xp.shape[-1]
    for start in _tap_offsets(g):
        limit = tuple(b + (o - 1) * s + 1 for b, o, s in zip(start, g.out, g.stride))
        yield lax.slice(xp, (0, *start, 0), (n, *limit, c), (1, *g.stride, 1))


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
    dxp = functools.reduce(operator.add, (_untap(v, start, g, padded) for start, v in parts))
    lo = tuple(p[0] for p in g.padding)
    return lax.slice(dxp, (0, *lo, 0), (n, *(a + s for a, s in zip(lo, g.sizes)), c))


def _check_cotangent(ct, x, g: _Geometry, op: str) -> jax.Array:
    ct = as_array(ct, "ct", op)
    check_floating(ct, "ct", op)
    want = (jnp.shape(x)[0], *g.out, jnp.shape(x)[-1])
    if ct.shape != want:
        raise ValueError(f"{op}: ct must have the pooled output's shape {want}, got {ct.shape}")
    return ct


# --------------------------------------------------------------------------------------------
# max


def _tap_valid(g: _Geometry, start: tuple[int, ...]) -> np.ndarray | None:
    """``(1, *out, 1)`` mask of the windows in which this tap sees an input element (not
    padding); ``None`` when it always does."""
    mask = np.ones((), bool)
    for i, (b, n) in enumerate(zip(start, g.sizes)):
        pos = _starts(g, i) + b
        mask = np.logical_and.outer(mask, (pos >= 0) & (pos < n))
    return None if mask.all() else mask[None, ..., None]


def _first_argmax(x, g: _Geometry) -> tuple[jax.Array, jax.Array]:
    """Each window's maximum and the index (row-major tap number) of its first maximal input
    element; a NaN counts as larger than every number, so the first NaN wins."""
    best = first = best_valid = None
    for t, (start, v) in enumerate(zip(_tap_offsets(g), _taps(_pad(x, g, -jnp.inf), g))):
        valid = _tap_valid(g, start)
        if best is None:
            best, first = v, jnp.zeros(v.shape, jnp.int32)
            best_valid = True if valid is None else jnp.asarray(valid)
            continue
        # strict >: on ties the earlier tap stays; a NaN replaces a number, never a NaN
        take = (v > best) | (jnp.isnan(v) & ~jnp.isnan(best))
        if best_valid is not True:  # the best so far is padding: any input element beats it
            take = take | ~best_valid
        if valid is not None:
            take = take & valid
        best = jnp.where(take, v, best)
        first = jnp.where(take, jnp.int32(t), first)
        best_valid = True if best_valid is True else best_valid | take
    return best, first


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _max_pool(x, g: _Geometry) -> jax.Array:
    # lax.max propagates NaN, as lax.reduce_window does
    return functools.reduce(lax.max, _taps(_pad(x, g, -jnp.inf), g))


@_max_pool.defjvp
def _max_pool_jvp(g, primals, tangents):
    (x,), (t,) = primals, tangents
    y, first = _first_argmax(x, g)
    # the tangent of each window is the tangent at its first maximal element: a select among
    # the taps of the (zero-padded) tangent, linear in t; its transpose is the scatter
    taps = list(_taps(_pad(t, g, 0), g))
    t_out = functools.reduce(
        lambda acc, kv: jnp.where(first == kv[0], kv[1], acc), enumerate(taps[1:], 1), taps[0]
    )
    return y, t_out


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
        \dot y[n, \mathbf{o}, c] = \dot x[n,\ \mathbf{i}^*(\mathbf{o}),\ c]

    with :math:`\mathbf{i}^*(\mathbf{o})` the *first* maximal input element of window
    :math:`\mathbf{o}` in row-major order of its taps.

    Matches ``lax.reduce_window(x, -inf, lax.max, ...)`` in value (NaN included: a window
    holding a NaN gives NaN), and PyTorch's ``MaxPool1d/2d/3d`` (stride defaults to the
    window; ``ceil_mode``; dilation). Under differentiation, forward and reverse mode, each
    window's derivative is that of its first maximal element (PyTorch's rule; the reverse
    mode is :func:`max_pool_backward`); a NaN counts as the maximum, so the first NaN of a
    window receives its gradient (PyTorch's CPU kernel picks the last NaN). ``jax.grad`` of
    ``lax.reduce_window`` agrees wherever the maximum is unique; on ties its choice is
    backend-defined, and it has no gradient at all with ``window_dilation`` — this one does.

    Args:
      x: ``(N, *spatial, C)`` floating input.
      window: window size; an int (spatial rank ``x.ndim - 2``) or one int per spatial dim.
      stride: int or tuple; ``None`` (default) means ``stride = window``.
      padding: int, per-dim ints, ``(lo, hi)`` pairs, ``"VALID"`` or ``"SAME"``; at most
        ``window // 2`` on each side (PyTorch's rule).
      dilation: spacing of the window's taps; int or tuple, >= 1.
      ceil_mode: round the output size up, dropping a last window that would start inside the
        right padding (PyTorch). A Python bool.

    Returns:
      ``(N, *out, C)`` in the input dtype, ``out`` from :func:`dlref.shapes.conv_output_size`;
      empty when ``N`` or ``C`` is 0.

    Raises:
      ValueError: bad rank; a spatial size of 0; window, stride or dilation < 1; negative
        padding or padding over half the window; a dilated window larger than the padded
        input; a window that sees only padding; an unknown padding string.
      TypeError: non-floating ``x``; window, stride, dilation or padding not ints (bools,
        floats and strings are refused); ``ceil_mode`` not a bool.

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
    x = as_array(x, "x", op)
    g = _geometry(x, window, stride, padding, dilation, ceil_mode, op)
    _check_no_empty_window(g, op)
    return _max_pool(x, g)


def max_pool_backward(
    x, ct, window, *, stride=None, padding=0, dilation=1, ceil_mode=False
) -> jax.Array:
    r"""The reverse-mode rule of :func:`max_pool`, written out: route each window's cotangent.

    .. math::
        \frac{\partial L}{\partial x[n, \mathbf{i}, c]} = \sum_{\mathbf{o}:\ \mathbf{i} =
        \mathbf{i}^*(\mathbf{o})} \frac{\partial L}{\partial y[n, \mathbf{o}, c]}

    with :math:`\mathbf{i}^*(\mathbf{o})` the first maximal input element of window
    :math:`\mathbf{o}` in row-major order of its taps (a NaN counts as the maximum; the first
    NaN wins); the sum accumulates windows that overlap. This is the study guide's "upsample"
    rule (pooling section) and PyTorch's ``max_pool2d_with_indices_backward``; it equals
    ``jax.vjp(lambda x: max_pool(x, window, ...), x)[1](ct)``, which jax derives by
    transposing the forward rule's gather. Each tap's share is scattered back with the
    transpose of its strided slice, a ``lax.pad`` with interior padding ``s - 1``.

    Args:
      x: the forward input ``(N, *spatial, C)``; its values choose the maxima.
      ct: the cotangent of the output, ``(N, *out, C)`` (the shape :func:`max_pool` returns).
      window, stride, padding, dilation, ceil_mode: as :func:`max_pool`.

    Returns:
      ``dL/dx``, the shape of ``x`` in the dtype of ``ct`` (16-bit floats accumulated in
      float32).

    Raises:
      ValueError: as :func:`max_pool`; ``ct`` not of the pooled output's shape.
      TypeError: as :func:`max_pool`; non-floating ``ct``.

    Example:
      >>> x = jnp.array([1.0, 3.0, 3.0, 2.0, 5.0]).reshape(1, 5, 1)
      >>> # windows [1,3,3] [3,3,2] [3,2,5]: the first two send their cotangent to index 1
      >>> max_pool_backward(x, jnp.array([1.0, 10.0, 100.0]).reshape(1, 3, 1), 3, stride=1)[0, :, 0]
      Array([  0.,  11.,   0.,   0., 100.], dtype=float32)
    """
    op = "max_pool_backward"
    x = as_array(x, "x", op)
    g = _geometry(x, window, stride, padding, dilation, ceil_mode, op)
    _check_no_empty_window(g, op)
    ct = _check_cotangent(ct, x, g, op)
    _, first = _first_argmax(x, g)
    acc = accumulation_dtype(ct.dtype)
    zero = jnp.zeros((), acc)
    parts = [
        (start, jnp.where(first == t, ct.astype(acc), zero))
        for t, start in enumerate(_tap_offsets(g))
    ]
    return _scatter_taps(parts, g, x.shape[0], x.shape[-1], acc).astype(ct.dtype)


# --------------------------------------------------------------------------------------------
# average


def _divisor_sizes(g: _Geometry, count_include_pad: bool, starts) -> list:
    """PyTorch's divisor factor per dim (the window is a box, so it factorises):
    ``end = min(start + k, n + p_hi)``; with padding counted ``end - start``, else
    ``min(end, n) - max(start, 0)``: the declared padding counts, the ceil overhang never.
    ``starts[i]`` are the window starts along dim i (NumPy, or jnp from ``iota``)."""
    xp = jnp if isinstance(starts[0], jax.Array) else np
    sizes = []
    for start, n, k, (_, hi) in zip(starts, g.sizes, g.window, g.padding):
        end = xp.minimum(start + k, n + hi)
        sizes.append(
            end - start if count_include_pad else xp.minimum(end, n) - xp.maximum(start, 0)
        )
    return sizes


def _divisor(g: _Geometry, count_include_pad: bool, dtype):
    """The divisor of every window, ``(1, *out, 1)``, or a Python int when it is the same for
    all. Computed from ``lax.iota`` rather than closed over as a NumPy constant, so that a
    traced program holds no array constant (which :func:`dlref.summary` would count as
    parameters)."""
    static = _divisor_sizes(g, count_include_pad, [_starts(g, i) for i in range(len(g.out))])
    if all((s == s[0]).all() for s in static):
        return math.prod(int(s[0]) for s in static)
    nd = len(g.out)
    starts = [lax.iota(jnp.int32, o) * s - lo for o, s, (lo, _) in zip(g.out, g.stride, g.padding)]
    div = None
    for i, size in enumerate(_divisor_sizes(g, count_include_pad, starts)):
        size = size.reshape((1,) * (i + 1) + (g.out[i],) + (1,) * (nd - i)).astype(dtype)
        div = size if div is None else div * size
    return div


def _avg_pool(x, g: _Geometry, count_include_pad: bool) -> jax.Array:
    """Linear in ``x``: jax differentiates it in both modes to any order."""
    acc = accumulation_dtype(x.dtype)
    total = functools.reduce(operator.add, _taps(_pad(x.astype(acc), g, 0), g))
    return (total / _divisor(g, count_include_pad, acc)).astype(x.dtype)


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
    floor-mode case. The op is linear in ``x``, so its derivative in both modes is itself:
    each window's cotangent is spread evenly, ``1/D`` each, over the elements it averaged
    (the padding's share is dropped); :func:`avg_pool_backward` writes that out.

    Args:
      x, window, stride, padding: as :func:`max_pool`.
      ceil_mode: round the output size up, dropping a last window that would start inside the
        right padding (PyTorch). A Python bool.
      count_include_pad: count the declared zero padding in the divisor. A Python bool.

    Returns:
      ``(N, *out, C)`` in the input dtype (16-bit floats are summed in float32); empty when
      ``N`` or ``C`` is 0.

    Raises:
      ValueError: bad rank; a spatial size of 0; window or stride < 1; negative padding or
        padding over half the window; a window larger than the padded input; an unknown
        padding string.
      TypeError: non-floating ``x``; window, stride or padding not ints (bools, floats and
        strings are refused); ``ceil_mode`` or ``count_include_pad`` not a bool.

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
    x = as_array(x, "x", op)
    g = _geometry(x, window, stride, padding, 1, ceil_mode, op)
    return _avg_pool(x, g, check_bool(count_include_pad, "count_include_pad", op))


def avg_pool_backward(
    x, ct, window, *, stride=None, padding=0, ceil_mode=False, count_include_pad=True
) -> jax.Array:
    r"""The reverse-mode rule of :func:`avg_pool`, written out: spread each window's cotangent.

    .. math::
        \frac{\partial L}{\partial x[n, \mathbf{i}, c]} = \sum_{\mathbf{o}:\ \mathbf{i} \in
        \text{window } \mathbf{o}} \frac{1}{D(\mathbf{o})}
        \frac{\partial L}{\partial y[n, \mathbf{o}, c]}

    with :math:`D(\mathbf{o})` the divisor of :func:`avg_pool`; padding positions take their
    share and drop it. This is the study guide's "upsample" rule for averages (pooling
    section) and PyTorch's ``avg_pool2d_backward``; it equals
    ``jax.vjp(lambda x: avg_pool(x, window, ...), x)[1](ct)``, which jax derives by
    transposing the linear forward.

    Args:
      x: the forward input ``(N, *spatial, C)`` (only its shape is used).
      ct: the cotangent of the output, ``(N, *out, C)`` (the shape :func:`avg_pool` returns).
      window, stride, padding, ceil_mode, count_include_pad: as :func:`avg_pool`.

    Returns:
      ``dL/dx``, as :func:`max_pool_backward` returns it.

    Raises:
      ValueError: as :func:`avg_pool`, and for a ``ct`` of the wrong shape.
      TypeError: as :func:`avg_pool`, and for a non-floating ``ct``.

    Example:
      >>> x = jnp.zeros((1, 4, 1))
      >>> # windows [pad,1] [2,3] [4,pad], padding not counted: divisors 1, 2, 1
      >>> ct = jnp.array([1.0, 1.0, 1.0]).reshape(1, 3, 1)
      >>> avg_pool_backward(x, ct, 2, padding=1, count_include_pad=False)[0, :, 0]
      Array([1. , 0.5, 0.5, 1. ], dtype=float32)
    """
    op = "avg_pool_backward"
    x = as_array(x, "x", op)
    g = _geometry(x, window, stride, padding, 1, ceil_mode, op)
    count_include_pad = check_bool(count_include_pad, "count_include_pad", op)
    ct = _check_cotangent(ct, x, g, op)
    acc = accumulation_dtype(ct.dtype)
    share = ct.astype(acc) / _divisor(g, count_include_pad, acc)
    parts = [(start, share) for start in _tap_offsets(g)]
    return _scatter_taps(parts, g, x.shape[0], x.shape[-1], acc).astype(ct.dtype)


# --------------------------------------------------------------------------------------------
# global


@jax.custom_jvp
def _global_max(x):
    return jnp.max(x, axis=1)  # reduce_max propagates NaN


@_global_max.defjvp
def _global_max_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    first = jnp.argmax(x, axis=1)  # the first maximum; the first NaN if there is one
    return jnp.max(x, axis=1), jnp.take_along_axis(t, first[:, None, :], axis=1)[:, 0, :]


def _global_input(x, op) -> tuple[jax.Array, int]:
    x = as_array(x, "x", op)
    check_floating(x, "x", op)
    check_rank(x, (3, 4, 5), "x (N, *spatial, C)", op)
    positions = math.prod(x.shape[1:-1])
    if positions == 0:
        raise ValueError(f"{op}: x must have at least one spatial position, got shape {x.shape}")
    return x, positions


def global_max_pool(x) -> jax.Array:
    r"""Maximum over all spatial positions, per example and channel.

    .. math:: y[n, c] = \max_{\mathbf{i}} x[n, \mathbf{i}, c], \qquad
              \dot y[n, c] = \dot x[n, \mathbf{i}^*, c]

    with :math:`\mathbf{i}^*` the first maximal position in row-major order.

    Matches ``jnp.max(x, axis=spatial)`` in value (a NaN anywhere gives NaN) and PyTorch's
    ``AdaptiveMaxPool(1)``. Under differentiation, forward and reverse mode, the derivative
    is that of the first maximal element (as :func:`max_pool`; a NaN counts as the maximum,
    the first NaN wins); ``jax.grad`` of ``jnp.max`` instead splits it evenly among ties.

    Args:
      x: ``(N, *spatial, C)`` with 1, 2 or 3 spatial dims.

    Returns:
      ``(N, C)`` in the input dtype; empty when ``N`` or ``C`` is 0.

    Raises:
      ValueError: rank not 3, 4 or 5; no spatial position (a spatial size of 0).
      TypeError: non-floating ``x``.

    Example:
      >>> x = jnp.array([[[1.0], [4.0], [4.0]]])
      >>> global_max_pool(x)
      Array([[4.]], dtype=float32)
      >>> jax.grad(lambda x: global_max_pool(x).sum())(x)[0, :, 0]   # first max wins
      Array([0., 1., 0.], dtype=float32)
    """
    x, positions = _global_input(x, "global_max_pool")
    n, c = x.shape[0], x.shape[-1]
    return _global_max(x.reshape(n, positions, c))


def global_avg_pool(x) -> jax.Array:
    r"""Mean over all spatial positions, per example and channel.

    .. math:: y[n, c] = \frac{1}{|\Omega|} \sum_{\mathbf{i} \in \Omega} x[n, \mathbf{i}, c]

    Matches ``jnp.mean(x, axis=spatial)``, flax/Keras global average pooling and PyTorch's
    ``AdaptiveAvgPool(1)``. Linear: the gradient is ``1/|Ω|`` everywhere (the average rule).
    16-bit floats are summed in float32.

    Args:
      x: ``(N, *spatial, C)`` with 1, 2 or 3 spatial dims.

    Returns:
      ``(N, C)`` in the input dtype; empty when ``N`` or ``C`` is 0.

    Raises:
      ValueError: rank not 3, 4 or 5; no spatial position (a spatial size of 0: the mean of
        nothing).
      TypeError: non-floating ``x``.

    Example:
      >>> global_avg_pool(jnp.array([[[1.0], [4.0], [4.0]]]))
      Array([[3.]], dtype=float32)
    """
    x, _ = _global_input(x, "global_avg_pool")
    acc = accumulation_dtype(x.dtype)
    return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)), dtype=acc).astype(x.dtype)
