"""Convolution as one matrix multiply per group: im2col forward, col2im backward.

The patches of every output pixel are gathered with strided slices (one slice per kernel tap)
into a matrix of shape ``(N·H_out·W_out, K_h·K_w·C_in/g)``; the convolution is then a matmul
with the ``(K_h·K_w·C_in/g, C_out/g)`` reshaped kernel, once per group (a batched einsum over
the groups). The backward pass is written out by hand behind a ``custom_vjp``: the weight
gradient is the transposed matmul ``patchesᵀ · dy``, the input gradient is *col2im*, the adjoint
of the gather (each tap's patch gradient is scattered back with the transposed strided slice,
``lax.pad`` with interior padding ``s - 1``, and the taps are summed).

This module uses ``dlref._checks`` and ``dlref.shapes`` only (never ``dlref.convolution``).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from dlref import _checks
from dlref.shapes import conv_output_size

__all__ = ["im2col_conv"]


class ConvGeometry(NamedTuple):
    """Static facts of one convolution (hashable, so it can be a ``custom_vjp`` static arg)."""

    in_sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    out_sizes: tuple[int, ...]
    groups: int
    c_in: int
    c_out: int

    @property
    def nd(self) -> int:
        return len(self.kernel)

    @property
    def taps(self) -> int:
        return math.prod(self.kernel)


def conv_geometry(
    x: Any, w: Any, stride: Any, padding: Any, dilation: Any, groups: Any, op: str
) -> ConvGeometry:
    """Validate the static arguments of a channels-last convolution and return its geometry.

    Shared by :func:`im2col_conv` and ``pallas_conv``. ``x`` is ``(N, *spatial, C_in)``, ``w``
    is ``(*kernel, C_in // groups, C_out)``.

    Raises:
      ValueError: ranks that do not match or are not 3, 4 or 5; channels not divisible by
        ``groups``; bad stride, dilation or padding; a kernel larger than the padded input.
      TypeError: non-floating inputs.
    """
    _checks.check_rank(w, (3, 4, 5), "w", op)
    nd = jnp.ndim(w) - 2
    _checks.check_rank(x, nd + 2, "x", op)
    _checks.check_floating(x, "x", op)
    _checks.check_floating(w, "w", op)
    groups = _checks.check_int(groups, "groups", op, minimum=1)
    c_in, c_out = x.shape[-1], w.shape[-1]
    if c_in % groups:
        raise ValueError(f"{op}: input channels C={c_in} must be divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(f"{op}: output channels O={c_out} must be divisible by groups={groups}")
    if w.shape[-2] * groups != c_in:
        raise ValueError(
            f"{op}: w.shape[-2]={w.shape[-2]} must equal C_in/groups={c_in}/{groups}"
            f"={c_in // groups}"
        )
    kernel = tuple(w.shape[:-2])
    stride = _checks.as_tuple(stride, nd, "stride", op, minimum=1)
    dilation = _checks.as_tuple(dilation, nd, "dilation", op, minimum=1)
    sizes = tuple(x.shape[1:-1])
    pads = _checks.normalize_padding(
        padding, nd, op, sizes=sizes, window=kernel, stride=stride, dilation=dilation
    )
    for n, k, p, d in zip(sizes, kernel, pads, dilation, strict=True):
        if n + p[0] + p[1] < d * (k - 1) + 1:
            raise ValueError(
                f"{op}: the dilated kernel d*(k-1)+1={d * (k - 1) + 1} is larger than the "
                f"padded input {n}+{p[0]}+{p[1]}={n + p[0] + p[1]}"
            )
    out = tuple(
        conv_output_size(n, k, s, p, d)
        for n, k, s, p, d in zip(sizes, kernel, stride, pads, dilation, strict=True)
    )
    return ConvGeometry(sizes, kernel, stride, pads, dilation, out, groups, c_in, c_out)


def _pad_input(x: jax.Array, geo: ConvGeometry) -> jax.Array:
    cfg = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in geo.padding] + [(0, 0, 0)]
    return lax.pad(x, jnp.zeros((), x.dtype), cfg)


def _tap_slices(geo: ConvGeometry):
    """For each tap (row-major over the kernel), the start and limit of its strided slice."""
    for tap in itertools.product(*(range(k) for k in geo.kernel)):
        start = tuple(t * d for t, d in zip(tap, geo.dilation, strict=True))
        limit = tuple(
            s0 + (o - 1) * s + 1 for s0, o, s in zip(start, geo.out_sizes, geo.stride, strict=True)
        )
        yield start, limit


def _patches(x: jax.Array, geo: ConvGeometry) -> jax.Array:
    """The im2col matrix, per group: ``(G, N·prod(out), T·C_in/G)``, columns ordered (tap, c)."""
    n = x.shape[0]
    xp = _pad_input(x, geo)
    cols = [
        lax.slice(xp, (0, *start, 0), (n, *limit, geo.c_in), (1, *geo.stride, 1))
        for start, limit in _tap_slices(geo)
    ]
    p = jnp.stack(cols, axis=-2)  # (N, *out, T, C)
    m = n * math.prod(geo.out_sizes)
    g = geo.groups
    p = p.reshape(m, geo.taps, g, geo.c_in // g)
    return p.transpose(2, 0, 1, 3).reshape(g, m, geo.taps * (geo.c_in // g))


def _weight_matrix(w: jax.Array, geo: ConvGeometry) -> jax.Array:
    """``(*k, C_in/G, C_out)`` -> ``(G, T·C_in/G, C_out/G)``."""
    g = geo.groups
    wm = w.reshape(geo.taps, geo.c_in // g, g, geo.c_out // g)
    return wm.transpose(2, 0, 1, 3).reshape(g, geo.taps * (geo.c_in // g), geo.c_out // g)


def _forward(x: jax.Array, w: jax.Array, geo: ConvGeometry) -> jax.Array:
    acc = _checks.accumulation_dtype(jnp.result_type(x, w))
    p, wm = _patches(x, geo), _weight_matrix(w, geo)
    if geo.groups == 1:  # a plain 2-D matmul (no batch dimension for XLA to transpose)
        y = jnp.dot(p[0], wm[0], preferred_element_type=acc)
    else:
        y = jnp.einsum("gmk,gko->mgo", p, wm, preferred_element_type=acc)
    return y.reshape(x.shape[0], *geo.out_sizes, geo.c_out).astype(x.dtype)


def _col2im(dp: jax.Array, geo: ConvGeometry, n: int, dtype) -> jax.Array:
    """Adjoint of :func:`_patches`: scatter-add each tap's patch gradient back to the input."""
    g, cg = geo.groups, geo.c_in // geo.groups
    m = n * math.prod(geo.out_sizes)
    dp = dp.reshape(g, m, geo.taps, cg).transpose(1, 2, 0, 3)
    dp = dp.reshape(n, *geo.out_sizes, geo.taps, geo.c_in)
    padded = tuple(sz + lo + hi for sz, (lo, hi) in zip(geo.in_sizes, geo.padding, strict=True))
    zero = jnp.zeros((), dp.dtype)
    # Tap t writes its patch gradient to x_pad[start + o*s]. With start = a*s + r, every tap of
    # the same residue r lands on the lattice r + j*s: sum those taps on the (small, output-
    # sized) lattice first, shifted by a, then put each lattice back with ONE transposed
    # strided slice (lax.pad with interior padding s - 1): prod(s) input-sized pads, not
    # prod(k) of them.
    classes: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = {}
    for t, (start, _) in enumerate(_tap_slices(geo)):
        r = tuple(b % s for b, s in zip(start, geo.stride, strict=True))
        a = tuple(b // s for b, s in zip(start, geo.stride, strict=True))
        classes.setdefault(r, []).append((t, a))
    total = None
    for r, taps in classes.items():
        span = [max(a[i] for _, a in taps) + geo.out_sizes[i] for i in range(geo.nd)]
        lattice = None
        for t, a in taps:
            cfg = [(0, 0, 0)]
            cfg += [(ai, sp - ai - o, 0) for ai, sp, o in zip(a, span, geo.out_sizes, strict=True)]
            piece = lax.pad(
                lax.index_in_dim(dp, t, axis=-2, keepdims=False), zero, cfg + [(0, 0, 0)]
            )
            lattice = piece if lattice is None else lattice + piece
        cfg = [(0, 0, 0)]
        for ri, sp, s, hp in zip(r, span, geo.stride, padded, strict=True):
            cfg.append((ri, hp - (ri + (sp - 1) * s + 1), s - 1))
        piece = lax.pad(lattice, zero, cfg + [(0, 0, 0)])
        total = piece if total is None else total + piece
    lo = tuple(p[0] for p in geo.padding)
    dx = lax.slice(
        total,
        (0, *lo, 0),
        (n, *(a + b for a, b in zip(lo, geo.in_sizes, strict=True)), geo.c_in),
    )
    return dx.astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _im2col(x: jax.Array, w: jax.Array, geo: ConvGeometry) -> jax.Array:
    return _forward(x, w, geo)


def _im2col_fwd(x, w, geo):
    return _forward(x, w, geo), (x, w)


def _im2col_bwd(geo, res, g):
    x, w = res
    n = x.shape[0]
    acc = _checks.accumulation_dtype(jnp.result_type(x, w))
    gm = g.reshape(n * math.prod(geo.out_sizes), geo.groups, geo.c_out // geo.groups)
    # Weight gradient: patches^T @ dy, one matmul per group.
    if geo.groups == 1:
        dwm = jnp.dot(_patches(x, geo)[0].T, gm[:, 0], preferred_element_type=acc)[None]
    else:
        dwm = jnp.einsum("gmk,mgo->gko", _patches(x, geo), gm, preferred_element_type=acc)
    dw = dwm.reshape(geo.groups, geo.taps, geo.c_in // geo.groups, geo.c_out // geo.groups)
    dw = dw.transpose(1, 2, 0, 3).reshape(w.shape).astype(w.dtype)
    # Input gradient: dy @ W^T gives the patch gradients; col2im scatters them back.
    wm = _weight_matrix(w, geo)
    if geo.groups == 1:
        dp = jnp.dot(gm[:, 0], wm[0].T, preferred_element_type=acc)[None]
    else:
        dp = jnp.einsum("mgo,gko->gmk", gm, wm, preferred_element_type=acc)
    dx = _col2im(dp, geo, n, x.dtype)
    return dx, dw


_im2col.defvjp(_im2col_fwd, _im2col_bwd)


def im2col_conv(x, w, *, stride=1, padding=0, dilation=1, groups=1):
    r"""Convolution (cross-correlation) as an im2col gather and one matmul per group.

    .. math::
        P[(n, o),\, (t, c)] = x_{pad}[n,\ o \cdot s + t \cdot d,\ g\,C_g + c], \qquad
        y[(n, o),\, g\,O_g + j] = \sum_{t, c} P[(n, o), (t, c)]\; w[t, c, g\,O_g + j]

    where ``o`` runs over output positions, ``t`` over kernel taps and ``g`` over groups. The
    patch matrix has ``N·prod(out)`` rows and ``prod(k)·C_in/groups`` columns, ``prod(k)``
    times the input's size for stride 1: the memory cost that Pallas' implicit GEMM avoids.
    The backward pass is explicit (``custom_vjp``): ``dw = Pᵀ dy`` and ``dx = col2im(dy Wᵀ)``.

    Matches ``lax.conv_general_dilated`` with ``dimension_numbers=("NHWC", "HWIO", "NHWC")``
    (and PyTorch's ``F.conv2d`` on transposed layouts), values and gradients.

    Args:
      x: input ``(N, *spatial, C_in)``, 1 to 3 spatial dimensions.
      w: kernel ``(*kernel, C_in // groups, C_out)`` (HWIO).
      stride: an int or one int per spatial dimension.
      padding: an int, a tuple of ints, a tuple of ``(lo, hi)`` pairs, ``"VALID"`` or ``"SAME"``.
      dilation: kernel dilation, an int or one per spatial dimension.
      groups: number of channel groups; ``C_in`` and ``C_out`` must be divisible by it.

    Returns:
      ``(N, *out, C_out)`` in ``x``'s dtype, accumulated in float32 (float64 for float64).

    Raises:
      ValueError: bad ranks, groups, stride, dilation or padding.
      TypeError: non-floating inputs.

    Example:
      >>> x = jnp.arange(1.0, 5.0).reshape(1, 4, 1)      # [1, 2, 3, 4]
      >>> w = jnp.ones((2, 1, 1))
      >>> im2col_conv(x, w)[0, :, 0]                     # sums of neighbours
      Array([3., 5., 7.], dtype=float32)

    References:
      Chellapilla, Puri and Simard, "High Performance Convolutional Neural Networks for
      Document Processing", 2006, https://inria.hal.science/inria-00112631.
    """
    geo = conv_geometry(x, w, stride, padding, dilation, groups, "im2col_conv")
    return _im2col(x, w, geo)
