"""Convolution as one matrix multiply per group: im2col forward, col2im backward.

The patches of every output pixel are gathered with strided slices (one slice per kernel tap)
into a matrix of shape ``(N·H_out·W_out, K_h·K_w·C_in/g)`` (:func:`im2col`); the convolution is
then a matmul with the ``(K_h·K_w·C_in/g, C_out/g)`` reshaped kernel, once per group (a batched
einsum over the groups). The backward rules are written out by hand: the weight gradient is the
transposed matmul ``patchesᵀ · dy`` (:func:`im2col_weight_grad`), the input gradient is
``dy · Wᵀ`` followed by :func:`col2im`, the adjoint of the gather (each tap's patch gradient is
scattered back with the transposed strided slice, ``lax.pad`` with interior padding ``s - 1``,
and the taps are summed; :func:`im2col_input_grad`).

They are wired as the ``"im2col"`` implementation of the convolution primitives
(:mod:`dlref.kernels.primitives`), so every transformation, at every order, runs these three
rules: a second derivative is again a forward, an input-gradient or a weight-gradient matmul.

This module uses ``dlref._checks`` and ``dlref.kernels.blocks``/``primitives`` only (never
``dlref.convolution``).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax

from dlref import _checks
from dlref.kernels import primitives
from dlref.kernels.blocks import (
    ConvGeometry,
    conv_geometry,
    input_grad_geometry,
    weight_grad_geometry,
)

__all__ = ["col2im", "im2col", "im2col_conv", "im2col_input_grad", "im2col_weight_grad"]


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


def _contract(spec: str, a: jax.Array, b: jax.Array, acc) -> jax.Array:
    """``einsum(spec, a, b)`` over the groups (axis ``g``), accumulated in ``acc``.

    With one group it is a plain 2-D matmul (no batch dimension for XLA to transpose), the
    ``g`` axis put back afterwards. The operands are converted to ``acc`` first. For 16-bit
    floats this is exact (every bfloat16/float16 value and every product of two of them is a
    float32 number), so the result is what ``preferred_element_type=acc`` means; it also runs
    where XLA's CPU dot has no mixed-precision kernel ("Unsupported element type for DotThunk:
    BF16 x BF16 = F32").
    """
    a, b = a.astype(acc), b.astype(acc)
    (sa, sb), out = spec.split("->")[0].split(","), spec.split("->")[1]
    if a.shape[sa.index("g")] > 1:
        return jnp.einsum(spec, a, b)
    a, b = jnp.squeeze(a, sa.index("g")), jnp.squeeze(b, sb.index("g"))
    # The 2-D operands in (rows, contracted) x (contracted, cols) order, as jnp.dot takes them.
    sa, sb = sa.replace("g", ""), sb.replace("g", "")
    (k,) = set(sa) & set(sb)
    a = a if sa[1] == k else a.T
    b = b if sb[0] == k else b.T
    return jnp.expand_dims(jnp.dot(a, b), out.index("g"))


def _forward(x: jax.Array, w: jax.Array, geo: ConvGeometry) -> jax.Array:
    acc = _checks.accumulation_dtype(jnp.result_type(x, w))
    y = _contract("gmk,gko->mgo", _patches(x, geo), _weight_matrix(w, geo), acc)
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


def _forward_impl(x, w, geo: ConvGeometry, options=None):
    del options
    return _forward(x, w, geo)


def _dy_matrix(dy: jax.Array, geo: ConvGeometry) -> jax.Array:
    """``(N, *out, C_out)`` -> ``(N·prod(out), G, C_out/G)``."""
    g = geo.groups
    return dy.reshape(dy.shape[0] * math.prod(geo.out_sizes), g, geo.c_out // g)


def _input_grad_impl(dy, w, geo: ConvGeometry, options=None):
    """``dx = col2im(dy · Wᵀ)``, one matmul per group, then the scatter."""
    del options
    acc = _checks.accumulation_dtype(jnp.result_type(dy, w))
    dp = _contract("mgo,gko->gmk", _dy_matrix(dy, geo), _weight_matrix(w, geo), acc)
    return _col2im(dp, geo, dy.shape[0], dy.dtype)


def _weight_grad_impl(x, dy, geo: ConvGeometry, options=None):
    """``dw = Pᵀ · dy``, one matmul per group."""
    del options
    acc = _checks.accumulation_dtype(jnp.result_type(x, dy))
    g = geo.groups
    dwm = _contract("gmk,mgo->gko", _patches(x, geo), _dy_matrix(dy, geo), acc)
    dw = dwm.reshape(g, geo.taps, geo.c_in // g, geo.c_out // g)
    return dw.transpose(1, 2, 0, 3).reshape(geo.w_shape()).astype(x.dtype)


primitives.register_impl(
    primitives.ConvImpl(
        "im2col",
        forward=_forward_impl,
        input_grad=_input_grad_impl,
        weight_grad=_weight_grad_impl,
    )
)


# ---------------------------------------------------------------------------------------------
# Public functions.


def _same_dtype(a, b):
    dtype = jnp.result_type(a, b)
    return jnp.asarray(a, dtype), jnp.asarray(b, dtype)


def im2col_conv(x, w, *, stride=1, padding=0, dilation=1, groups=1):
    r"""Convolution (cross-correlation) as an im2col gather and one matmul per group.

    .. math::
        P[(n, o),\, (t, c)] = x_{pad}[n,\ o \cdot s + t \cdot d,\ g\,C_g + c], \qquad
        y[(n, o),\, g\,O_g + j] = \sum_{t, c} P[(n, o), (t, c)]\; w[t, c, g\,O_g + j]

    where ``o`` runs over output positions, ``t`` over kernel taps and ``g`` over groups. The
    patch matrix has ``N·prod(out)`` rows and ``prod(k)·C_in/groups`` columns, ``prod(k)``
    times the input's size for stride 1: the memory cost that Pallas' implicit GEMM avoids.
    Differentiable at every order under every transformation (a ``dlref_conv`` primitive):
    reverse mode runs ``dw = Pᵀ dy`` and ``dx = col2im(dy Wᵀ)``, forward mode the same
    matmul on the tangents.

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
      TypeError: non-floating inputs; non-int arguments.

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
    x, w = _same_dtype(x, w)
    return primitives.conv(x, w, geo, impl="im2col")[0]


def im2col_input_grad(dy, w, input_shape, *, stride=1, padding=0, dilation=1, groups=1):
    r"""The input gradient of :func:`im2col_conv`: ``dy · Wᵀ``, then :func:`col2im`.

    .. math::
        dP[(n, o), (t, c)] = \sum_j dy[(n, o), j]\, w[t, c, j], \qquad
        dx = \mathrm{col2im}(dP)

    A transposed convolution. Differentiable at every order (a ``dlref_conv_transpose``
    primitive whose transposes are :func:`im2col_conv` and :func:`im2col_weight_grad`).

    Matches ``jax.vjp`` of ``lax.conv_general_dilated`` with respect to its input.

    Args:
      dy: the output cotangent ``(N, *out, C_out)``.
      w: the kernel ``(*kernel, C_in // groups, C_out)``.
      input_shape: the forward input's shape ``(N, *spatial, C_in)``.
      stride: as :func:`im2col_conv`.
      padding: as :func:`im2col_conv`.
      dilation: as :func:`im2col_conv`.
      groups: as :func:`im2col_conv`.

    Returns:
      ``dx`` of shape ``input_shape`` in ``dy``'s dtype.

    Raises:
      ValueError: bad arguments (as :func:`im2col_conv`), or ``dy`` not of the output shape.
      TypeError: non-floating inputs; non-int arguments.

    Example:
      >>> im2col_input_grad(jnp.ones((1, 3, 1)), jnp.ones((2, 1, 1)), (1, 4, 1))[0, :, 0]
      Array([1., 2., 2., 1.], dtype=float32)
    """
    op = "im2col_input_grad"
    geo = input_grad_geometry(dy, w, input_shape, stride, padding, dilation, groups, op)
    dy, w = _same_dtype(dy, w)
    return primitives.conv_transpose(dy, w, geo, impl="im2col")


def im2col_weight_grad(x, dy, kernel_size, *, stride=1, padding=0, dilation=1, groups=1):
    r"""The weight gradient of :func:`im2col_conv`: ``Pᵀ · dy``, one matmul per group.

    .. math:: dw[t, c, g\,O_g + j] = \sum_{n, o} P[(n, o), (t, c)]\; dy[(n, o), g\,O_g + j]

    Differentiable at every order (a ``dlref_conv_weight_grad`` primitive whose transposes are
    :func:`im2col_conv` and :func:`im2col_input_grad`).

    Matches ``jax.vjp`` of ``lax.conv_general_dilated`` with respect to its kernel.

    Args:
      x: the forward input ``(N, *spatial, C_in)``.
      dy: the output cotangent ``(N, *out, C_out)``.
      kernel_size: the kernel's spatial size, an int or one per spatial dimension.
      stride: as :func:`im2col_conv`.
      padding: as :func:`im2col_conv`.
      dilation: as :func:`im2col_conv`.
      groups: as :func:`im2col_conv`.

    Returns:
      ``dw`` of shape ``(*kernel_size, C_in // groups, C_out)`` in ``x``'s dtype.

    Raises:
      ValueError: bad arguments (as :func:`im2col_conv`), or ``dy`` not of the output shape.
      TypeError: non-floating inputs; non-int arguments.

    Example:
      >>> x = jnp.arange(1.0, 5.0).reshape(1, 4, 1)
      >>> im2col_weight_grad(x, jnp.ones((1, 3, 1)), 2)[:, 0, 0]    # 1+2+3, 2+3+4
      Array([6., 9.], dtype=float32)
    """
    op = "im2col_weight_grad"
    geo = weight_grad_geometry(x, dy, kernel_size, stride, padding, dilation, groups, op)
    x, dy = _same_dtype(x, dy)
    return primitives.weight_grad(x, dy, geo, impl="im2col")


def im2col(x, kernel_size, *, stride=1, padding=0, dilation=1, groups=1):
    r"""The patch matrix of a convolution, per group: ``(G, N·prod(out), prod(k)·C_in/G)``.

    .. math:: P_g[(n, o),\, (t, c)] = x_{pad}[n,\ o \cdot s + t \cdot d,\ g\,C_g + c]

    Rows run over the batch and the output pixels (row-major), columns over the kernel taps
    (row-major) and then the group's channels. Linear; :func:`col2im` is its adjoint.

    Matches ``lax.conv_general_dilated_patches`` up to the order of the columns (lax puts the
    channels first) and the split into groups.

    Args:
      x: input ``(N, *spatial, C_in)``.
      kernel_size: the kernel's spatial size, an int or one per spatial dimension.
      stride: as :func:`im2col_conv`.
      padding: as :func:`im2col_conv`.
      dilation: as :func:`im2col_conv`.
      groups: as :func:`im2col_conv`.

    Returns:
      The patches ``(groups, N·prod(out), prod(kernel)·C_in/groups)`` in ``x``'s dtype.

    Raises:
      ValueError: bad arguments (as :func:`im2col_conv`).
      TypeError: non-floating input; non-int arguments.

    Example:
      >>> im2col(jnp.arange(1.0, 5.0).reshape(1, 4, 1), 2)[0]
      Array([[1., 2.],
             [2., 3.],
             [3., 4.]], dtype=float32)
    """
    geo = _patch_geometry(x, kernel_size, stride, padding, dilation, groups, "im2col")
    return _patches(jnp.asarray(x), geo)


def col2im(cols, input_shape, kernel_size, *, stride=1, padding=0, dilation=1, groups=1):
    r"""The adjoint of :func:`im2col`: scatter-add patch gradients back to the input.

    .. math::
        dx[n, i, g\,C_g + c] = \sum_{(o, t):\ o \cdot s + t \cdot d - p_{lo} = i}
            dP_g[(n, o), (t, c)]

    Taps with the same stride residue share one output-sized lattice; each lattice is put back
    with one transposed strided slice (``lax.pad`` with interior padding ``s - 1``), so the
    cost is ``prod(stride)`` input-sized pads rather than ``prod(kernel)``. This is the input
    gradient's scatter in :func:`im2col_input_grad`, and it equals what autodiff produces for
    :func:`im2col` (``jax.linear_transpose``).

    Matches ``jax.linear_transpose`` of :func:`im2col` (and PyTorch's ``F.fold`` for one group,
    up to the column order).

    Args:
      cols: patch gradients ``(groups, N·prod(out), prod(kernel)·C_in/groups)``.
      input_shape: the input's shape ``(N, *spatial, C_in)``.
      kernel_size: the kernel's spatial size, an int or one per spatial dimension.
      stride: as :func:`im2col_conv`.
      padding: as :func:`im2col_conv`.
      dilation: as :func:`im2col_conv`.
      groups: as :func:`im2col_conv`.

    Returns:
      ``(N, *spatial, C_in)`` in ``cols``' dtype.

    Raises:
      ValueError: bad arguments (as :func:`im2col_conv`), or ``cols`` of the wrong shape.
      TypeError: non-floating ``cols``; non-int arguments.

    Example:
      >>> col2im(jnp.ones((1, 3, 2)), (1, 4, 1), 2)[0, :, 0]   # how many windows see each pixel
      Array([1., 2., 2., 1.], dtype=float32)
    """
    op = "col2im"
    _checks.check_floating(cols, "cols", op)
    shape = _checks.as_shape(input_shape, "input_shape", op)
    x = jax.ShapeDtypeStruct(shape, jnp.result_type(cols))
    geo = _patch_geometry(x, kernel_size, stride, padding, dilation, groups, op)
    n = x.shape[0]
    want = (geo.groups, n * math.prod(geo.out_sizes), geo.taps * (geo.c_in // geo.groups))
    if tuple(jnp.shape(cols)) != want:
        raise ValueError(f"{op}: cols must have shape {want}, got {jnp.shape(cols)}")
    return _col2im(jnp.asarray(cols), geo, n, jnp.result_type(cols))


def _patch_geometry(x, kernel_size, stride, padding, dilation, groups, op) -> ConvGeometry:
    nd = _checks.check_rank(x, (3, 4, 5), "x", op) - 2
    kernel = _checks.as_tuple(kernel_size, nd, "kernel_size", op, minimum=1)
    groups = _checks.check_int(groups, "groups", op, minimum=1)
    c = jnp.shape(x)[-1]
    w = jax.ShapeDtypeStruct((*kernel, c // groups, groups), jnp.result_type(x))
    return conv_geometry(x, w, stride, padding, dilation, groups, op)
