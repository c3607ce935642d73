r"""Convolution by its definition: every padding, stride, dilation, groups; transposed; separable.

Conventions (docs/contract.md): channels-last arrays ``x: (N, *spatial, C_in)`` and kernels
``w: (*kernel, C_in // groups, C_out)`` (HWIO, as ``lax`` and flax); the spatial rank (1, 2 or
3) is inferred from the kernel. ``layout="NCHW"`` takes PyTorch's channels-first arrays
``(N, C, *spatial)`` and ``OIHW`` kernels ``(C_out, C_in // groups, *kernel)`` for *any*
spatial rank; the rank-specific names ``"NWC"`` / ``"NCW"`` (1-D) and ``"NDHWC"`` / ``"NCDHW"``
(3-D) are accepted as aliases at their own rank.

What is computed (a cross-correlation, as in every framework):

.. math::
    y[n, \mathbf{o}, c_{out}] = \sum_{\mathbf{t}} \sum_{c \in g(c_{out})}
        x_{pad}[n, \mathbf{o} \odot \mathbf{s} + \mathbf{t} \odot \mathbf{d}, c]\;
        w[\mathbf{t}, c \bmod (C_{in}/G), c_{out}]

where ``t`` runs over the kernel taps, ``g(c_out)`` is the group of input channels that output
channel ``c_out`` sees (``C_out`` is laid out group-major, as ``feature_group_count`` in lax and
``groups`` in PyTorch), and each spatial output size is

.. math:: out = \left\lfloor \frac{n + p_{lo} + p_{hi} - d\,(k - 1) - 1}{s} \right\rfloor + 1

(:func:`dlref.shapes.conv_output_size`). The study guide writes this with ``p`` the *total* padding
in one place and the per-side padding in another, and without dilation (erratum 1, docs/errata.md).

``impl`` selects how it is computed; every implementation gets the same validated, channels-last
arguments (one validation, :func:`dlref.kernels.blocks.conv_geometry`):

* ``"reference"`` — the definition above: a Python loop over the kernel *taps* (never over
  pixels) adding ``strided slice of the padded input @ the tap's (C_in/G, C_out) matrix``
  (one einsum per tap over the groups). Jit-able at real sizes. Its transposed convolution
  and its gradients are the linear transposes of this definition (jax's autodiff of it).
* ``"xla"`` — ``lax.conv_general_dilated`` (cuDNN on NVIDIA GPUs), with lax's own rules.
* ``"im2col"``, ``"pallas"`` — ``dlref.kernels.im2col_conv`` / ``pallas_conv`` and their
  explicit backward kernels (col2im; the Pallas input- and weight-gradient kernels). Pallas is
  imported only when asked for.
* ``"auto"`` — the fastest implementation known to be correct for the platform and the shape
  (:func:`auto_impl`): measured by ``dlref bench``, never interpret-mode Pallas on a CPU, and
  Pallas on a GPU or TPU only where the tuning table holds a measured entry that beat XLA.

Every implementation but ``"xla"`` runs as the convolution primitives of
:mod:`dlref.kernels.primitives` (``dlref_conv``, ``dlref_conv_transpose``,
``dlref_conv_weight_grad``), whose JVP, transpose and batching rules make ``jit``, ``vmap``,
``grad``, ``jvp``, ``linearize``, ``jacfwd``, ``jacrev`` and ``hessian`` work at every order with
the implementation's own kernels; ``"xla"`` is ``lax.conv_general_dilated`` with lax's rules.
A jaxpr shows ``dlref_conv`` with a ``geometry`` parameter (:class:`ConvGeometry`) wherever
such a convolution runs, which :func:`dlref.summary` reads.

Dtypes: bfloat16 and float16 inputs accumulate in float32 (``preferred_element_type``) and the
result is cast back to the input dtype; float32 and float64 accumulate in their own precision.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dlref._checks import (
    accumulation_dtype,
    as_array,
    as_tuple,
    check_int,
    normalize_padding,
)
from dlref.kernels import primitives
from dlref.kernels.blocks import ConvGeometry, conv_geometry, target_device
from dlref.shapes import conv_transpose_output_size

__all__ = ["auto_impl", "conv", "conv_transpose", "depthwise_separable_conv"]

IMPLS = ("reference", "xla", "im2col", "pallas", "auto")

_CHANNELS_LAST = {"NHWC": None, "NWC": 1, "NDHWC": 3}  # layout -> the one rank it names
_CHANNELS_FIRST = {"NCHW": None, "NCW": 1, "NCDHW": 3}
_DIMENSION_NUMBERS = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


# --------------------------------------------------------------------------------------------
# validation shared by conv and conv_transpose


def _channels_first(layout: Any, nd: int, op: str) -> bool:
    """Validate ``layout`` for spatial rank ``nd``; True for channels-first."""
    for table, first in ((_CHANNELS_LAST, False), (_CHANNELS_FIRST, True)):
        if isinstance(layout, str) and layout in table:
            rank = table[layout]
            if rank is not None and rank != nd:
                raise ValueError(
                    f"{op}: layout={layout!r} names a {rank}-D layout, but the kernel has "
                    f"{nd} spatial dimensions (use 'NHWC' or 'NCHW' for any rank)"
                )
            return first
    names = tuple(_CHANNELS_LAST) + tuple(_CHANNELS_FIRST)
    raise ValueError(f"{op}: layout must be one of {names}, got {layout!r}")


def _to_channels_last(x, w, layout, op: str):
    """Check ranks and dtypes; return channels-last ``x``, HWIO-ordered ``w`` and the rank.

    The ranks are checked by :func:`conv_geometry` (the one validation of every impl) on the
    arrays as given, before the layout moves their axes.
    """
    x, w = as_array(x, "x", op), as_array(w, "w", op)
    if w.ndim not in (3, 4, 5) or x.ndim != w.ndim:
        conv_geometry(x, w, 1, 0, 1, 1, op)  # raises the rank error
    nd = w.ndim - 2
    if _channels_first(layout, nd, op):
        x = jnp.moveaxis(x, 1, -1)
        w = jnp.transpose(w, (*range(2, nd + 2), 1, 0))
    for v, name in ((x, "x"), (w, "w")):
        if not jnp.issubdtype(v.dtype, jnp.floating):
            raise TypeError(f"{op}: {name} must have a floating dtype, got {v.dtype}")
    if min(w.shape[:nd]) < 1:
        raise ValueError(f"{op}: the kernel w must have no empty spatial dim, got shape {w.shape}")
    dtype = jnp.result_type(x, w)
    return x.astype(dtype), w.astype(dtype), nd


def _check_impl(impl: Any, op: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f"{op}: impl must be one of {IMPLS}, got {impl!r}")


# --------------------------------------------------------------------------------------------
# the implementations (all take channels-last x, HWIO w and the validated geometry)


def _conv_reference(x, w, geo: ConvGeometry, options=None):
    """The definition: a sum over kernel taps of strided slices times the tap's weights."""
    del options
    k, groups, cin_g, cout = geo.kernel, geo.groups, geo.c_in // geo.groups, geo.c_out
    acc = accumulation_dtype(x.dtype)
    xp = lax.pad(
        x, jnp.zeros((), x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in geo.padding), (0, 0, 0)]
    )
    xg = xp.reshape(*xp.shape[:-1], groups, cin_g)  # input channels, group-major
    wg = w.reshape(*k, cin_g, groups, cout // groups)  # output channels, group-major
    y = jnp.zeros((x.shape[0], *geo.out_sizes, groups, cout // groups), acc)
    for tap in itertools.product(*(range(ki) for ki in k)):
        start = tuple(t * d for t, d in zip(tap, geo.dilation, strict=True))
        limit = tuple(
            b + (o - 1) * s + 1 for b, o, s in zip(start, geo.out_sizes, geo.stride, strict=True)
        )
        patch = lax.slice(
            xg, (0, *start, 0, 0), (xg.shape[0], *limit, groups, cin_g), (1, *geo.stride, 1, 1)
        )  # (N, *out, G, C_in/G): the input pixel each output pixel sees through this tap
        y = y + jnp.einsum(
            "...gi,igo->...go",
            patch,
            wg[tap],
            preferred_element_type=acc,
            precision=lax.Precision.HIGHEST,
        )
    return y.reshape(*y.shape[:-2], cout).astype(x.dtype)


# The reference's transposed convolution and weight gradient are jax's linear transposes of the
# definition (primitives.ConvImpl with no explicit backward rules).
primitives.register_impl(primitives.ConvImpl("reference", forward=_conv_reference))


def _conv_xla(x, w, stride, padding, dilation, groups, lhs_dilation=None):
    """``lax.conv_general_dilated``; in a dimension with both stride > 1 and dilation > 1 the
    conv runs at stride 1 and the output is sliced with the stride, because jax's input
    gradient of the strided, dilated conv (a conv dilated on both sides) can abort XLA's CPU
    compiler (jaxlib 0.11.2: SIGABRT, "Window dimensions do not match RHS shape";
    tests/test_convolution.py reproduces it in a subprocess). Same values, ``s×`` the work in
    that dimension, only for such rare (strided atrous) convolutions."""
    nd = w.ndim - 2
    both = tuple(s > 1 and d > 1 for s, d in zip(stride, dilation, strict=True))
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=tuple(1 if b else s for s, b in zip(stride, both, strict=True)),
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=dilation,
        dimension_numbers=_DIMENSION_NUMBERS[nd],
        feature_group_count=groups,
        preferred_element_type=accumulation_dtype(x.dtype),
    )
    if any(both):
        y = y[(slice(None), *(slice(None, None, s if b else 1) for s, b in zip(stride, both)))]
    return y.astype(x.dtype)


# --------------------------------------------------------------------------------------------
# impl="auto"

# The CPU rule, from `dlref bench` on its CPU suite (bench/results/cpu_cpu.json, forward and
# forward + backward): XLA's CPU convolution is slow on depthwise (grouped) convolutions, which
# the per-tap definition computes as elementwise multiply-adds; a 1x1, stride-1, unpadded
# convolution is one matmul, which im2col runs as a plain jnp.dot. Everything else: XLA.


def auto_impl(geometry: ConvGeometry, dtype: Any, *, platform: str | None = None) -> str:
    """The implementation ``impl="auto"`` runs for a convolution: the fastest known correct.

    * CPU: ``"reference"`` for depthwise convolutions (``C_in/groups = 1``, ``groups > 1``),
      ``"im2col"`` (one matmul) for 1×1, stride-1, unpadded convolutions, ``"xla"``
      otherwise: the winners of ``dlref bench``'s CPU suite, forward and forward + backward.
      Pallas is never picked on a CPU (it would run in interpret mode).
    * GPU and TPU: ``"pallas"`` where the tuning table (``dlref.kernels.tuning``) holds a
      ``measured`` entry for the device kind, shape signature and dtype whose Pallas time beat
      XLA's (``time_ms < xla_time_ms``), ``"xla"`` otherwise.

    Matches what ``dlref bench`` reports in its ``auto`` rows.

    Args:
      geometry: the convolution's :class:`ConvGeometry`.
      dtype: the input dtype.
      platform: ``"cpu"``, ``"gpu"`` or ``"tpu"``; ``None`` means the target device's.

    Returns:
      One of ``"reference"``, ``"im2col"``, ``"pallas"``, ``"xla"``.

    Example:
      >>> from dlref.kernels import conv_geometry
      >>> geo = conv_geometry(jnp.ones((1, 8, 8, 4)), jnp.ones((3, 3, 1, 4)), 1, 1, 1, 4, "doc")
      >>> auto_impl(geo, jnp.float32, platform="cpu")
      'reference'
    """
    target = target_device()
    platform = target.platform if platform is None else platform
    if platform in ("gpu", "tpu"):
        from dlref.kernels import tuning

        entry = tuning.default_table().entry(
            target.device_kind, tuning.conv_signature(geometry), dtype
        )
        return "pallas" if entry is not None and entry.beats_xla else "xla"
    if geometry.groups > 1 and geometry.c_in == geometry.groups:
        return "reference"
    one_by_one = (
        all(k == 1 for k in geometry.kernel)
        and all(s == 1 for s in geometry.stride)
        and all(p == (0, 0) for p in geometry.padding)
        and geometry.groups == 1
    )
    return "im2col" if one_by_one else "xla"


def _kernels(impl: str) -> None:
    """Import (once) the module that registers an implementation of the primitives."""
    if impl == "im2col":
        import dlref.kernels.im2col  # noqa: F401
    elif impl == "pallas":
        import dlref.kernels.pallas_igemm  # noqa: F401


def _conv(impl: str, x, w, geo: ConvGeometry):
    if impl == "auto":
        impl = auto_impl(geo, x.dtype)
    if impl == "xla":
        return _conv_xla(x, w, geo.stride, geo.padding, geo.dilation, geo.groups)
    _kernels(impl)
    if impl == "pallas":
        from dlref.kernels.pallas_igemm import pallas_conv

        return pallas_conv(
            x, w, stride=geo.stride, padding=geo.padding, dilation=geo.dilation, groups=geo.groups
        )
    return primitives.conv(x, w, geo, impl=impl)[0]


def _conv_transpose(impl: str, x, w, geo: ConvGeometry, output_padding):
    """The adjoint of the forward conv ``geo`` applied to ``x`` (zero-padded on the high side
    where ``output_padding >= stride`` makes the forward output longer than ``x``)."""
    if impl == "auto":
        impl = auto_impl(geo, x.dtype)
    if impl == "xla":
        return _conv_transpose_xla(x, w, geo, output_padding)
    extra = [o - n for o, n in zip(geo.out_sizes, x.shape[1:-1], strict=True)]
    if any(extra):
        x = jnp.pad(x, [(0, 0), *((0, e) for e in extra), (0, 0)])
    _kernels(impl)
    if impl == "pallas":
        from dlref.kernels.pallas_igemm import pallas_conv_input_grad

        return pallas_conv_input_grad(
            x,
            w,
            geo.x_shape(x.shape[0]),
            stride=geo.stride,
            padding=geo.padding,
            dilation=geo.dilation,
            groups=geo.groups,
        )
    return primitives.conv_transpose(x, w, geo, impl=impl)


def _transpose_kernel(w, groups):
    """The kernel of the equivalent forward conv: taps flipped, in/out swapped per group.

    ``w: (*k, C_out_t/G, C_in_t)`` -> ``(*k, C_in_t/G, C_out_t)`` with, for group ``g``,
    ``w'[t, i, g·C_out_t/G + o] = w[k - 1 - t, o, g·C_in_t/G + i]``.
    """
    nd = w.ndim - 2
    k, (cout_g, cin) = w.shape[:nd], w.shape[nd:]
    wg = w.reshape(*k, cout_g, groups, cin // groups)
    wg = jnp.swapaxes(wg, nd, nd + 2)  # (*k, C_in_t/G, G, C_out_t/G)
    wt = wg.reshape(*k, cin // groups, groups * cout_g)
    return jnp.flip(wt, axis=tuple(range(nd)))


def _conv_transpose_xla(x, w, geo: ConvGeometry, output_padding):
    """``lax.conv_general_dilated`` with ``lhs_dilation = stride`` and the flipped kernel.

    XLA's CPU compiler (jaxlib 0.11.2) can abort the process (a failed CHECK in its algebraic
    simplifier, "Window dimensions do not match RHS shape") on a convolution that has both
    lhs_dilation > 1 and rhs_dilation > 1 in one dimension; such a transposed conv is given to
    XLA as a plain conv of the zero-interleaved input instead (tests/test_convolution.py pins
    it)."""
    nd = geo.nd
    pads = tuple(
        (d * (k - 1) - lo, d * (k - 1) - hi + a)
        for k, d, a, (lo, hi) in zip(geo.kernel, geo.dilation, output_padding, geo.padding)
    )
    wt = _transpose_kernel(w, geo.groups)  # (*k, C_in_t/G, C_out_t)
    stride = geo.stride
    if any(s > 1 and d > 1 for s, d in zip(stride, geo.dilation, strict=True)):
        x = lax.pad(
            x,
            jnp.zeros((), x.dtype),
            [(0, 0, 0), *((lo, hi, s - 1) for (lo, hi), s in zip(pads, stride)), (0, 0, 0)],
        )
        return _conv_xla(x, wt, (1,) * nd, ((0, 0),) * nd, geo.dilation, geo.groups)
    return _conv_xla(x, wt, (1,) * nd, pads, geo.dilation, geo.groups, lhs_dilation=stride)


# --------------------------------------------------------------------------------------------
# public API


def conv(
    x,
    w,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    layout="NHWC",
    impl="reference",
) -> jax.Array:
    r"""1-, 2- or 3-D convolution (cross-correlation) with stride, padding, dilation and groups.

    .. math::
        y[n, \mathbf{o}, c_{out}] = \sum_{\mathbf{t} \in \text{taps}}
            x_{pad}[n,\ \mathbf{o} \odot \mathbf{s} + \mathbf{t} \odot \mathbf{d},\ g(c_{out})]
            \cdot w[\mathbf{t}, :, c_{out}],
        \qquad out = \left\lfloor \frac{n + p_{lo} + p_{hi} - d(k-1) - 1}{s} \right\rfloor + 1

    With ``groups = G`` the ``C_in`` input channels and ``C_out`` output channels are split into
    ``G`` consecutive blocks and block ``g`` of the output only sees block ``g`` of the input;
    ``groups = C_in`` is a depthwise convolution, with channel multiplier ``C_out / C_in``.
    A 1×1 kernel is a per-pixel matrix product over channels.

    Matches ``lax.conv_general_dilated`` (with ``feature_group_count``) and flax's
    ``nnx.Conv``; PyTorch's ``F.conv1d/2d/3d`` with ``layout="NCHW"``. ``"SAME"`` follows
    lax/TensorFlow (``out = ceil(n/s)``, an odd extra pad goes to the high side), which is
    PyTorch's ``padding="same"`` at stride 1 (PyTorch refuses it with strides). The study guide's
    size formulas are the
    ``d = 1`` special case, with ``p`` total in one and per side in the other (erratum 1,
    docs/errata.md).

    Args:
      x: input ``(N, *spatial, C_in)``; ``(N, C_in, *spatial)`` with ``layout="NCHW"``.
      w: kernel ``(*kernel, C_in // groups, C_out)``; ``(C_out, C_in // groups, *kernel)``
        with ``layout="NCHW"``. Its rank sets the spatial rank (1, 2 or 3).
      stride: int or one int >= 1 per spatial dim.
      padding: int (both sides of every dim), a tuple of ints (symmetric per dim), a tuple of
        ``(lo, hi)`` pairs, ``"VALID"`` or ``"SAME"``.
      dilation: int or one int >= 1 per spatial dim (the kernel's taps are ``d`` apart, so it
        spans ``d·(k - 1) + 1`` pixels).
      groups: number of channel groups; must divide ``C_in`` and ``C_out``.
      layout: ``"NHWC"`` (channels-last, default) or ``"NCHW"`` (channels-first, kernel OIHW),
        for any rank; ``"NWC"``, ``"NCW"``, ``"NDHWC"``, ``"NCDHW"`` at their own rank.
      impl: ``"reference"``, ``"xla"``, ``"im2col"``, ``"pallas"`` or ``"auto"`` (module doc).

    Returns:
      ``(N, *out, C_out)`` (``(N, C_out, *out)`` for ``"NCHW"``), in the dtype of ``x`` and
      ``w`` (16-bit floats accumulate in float32).

    Raises:
      ValueError: kernel rank not 3–5 or not the input's rank; input channels not
        ``groups · w.shape[-2]`` or not divisible by ``groups``; ``C_out`` not divisible by
        ``groups``; stride or dilation < 1; negative padding; an unknown padding string,
        layout or impl; a dilated kernel larger than the padded input.
      TypeError: non-floating inputs; non-int stride, dilation, padding or groups.

    Example:
      >>> x = jnp.arange(9.0).reshape(1, 3, 3, 1)     # d2l 6.2: X = [[0,1,2],[3,4,5],[6,7,8]]
      >>> w = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(2, 2, 1, 1)
      >>> conv(x, w)[0, :, :, 0]
      Array([[19., 25.],
             [37., 43.]], dtype=float32)

    References:
      Dumoulin and Visin, "A guide to convolution arithmetic for deep learning", 2016,
      https://arxiv.org/abs/1603.07285.
      Zhang et al., "Dive into Deep Learning", §7.2–7.4, https://d2l.ai.
    """
    return _conv_op(x, w, stride, padding, dilation, groups, layout, impl, "conv")


def _conv_op(x, w, stride, padding, dilation, groups, layout, impl, op: str) -> jax.Array:
    """:func:`conv`, with every message naming ``op`` (its callers' name)."""
    _check_impl(impl, op)
    x, w, nd = _to_channels_last(x, w, layout, op)
    geo = conv_geometry(x, w, stride, padding, dilation, groups, op)
    y = _conv(impl, x, w, geo)
    return jnp.moveaxis(y, -1, 1) if _channels_first(layout, nd, op) else y


def conv_transpose(
    x,
    w,
    *,
    stride=1,
    padding=0,
    output_padding=0,
    dilation=1,
    groups=1,
    layout="NHWC",
    impl="reference",
) -> jax.Array:
    r"""Transposed convolution: the adjoint (input gradient) of :func:`conv` with the same kernel.

    .. math::
        \langle \mathrm{conv}(u, w), x \rangle = \langle u, \mathrm{conv\_transpose}(x, w) \rangle,
        \qquad out = (n - 1)\,s - p_{lo} - p_{hi} + d\,(k - 1) + output\_padding + 1

    where ``conv`` runs with the same ``stride``, ``padding``, ``dilation``, ``groups`` on an
    input ``u`` of the output's size. ``impl="xla"`` computes it as a plain convolution:
    interleave ``s - 1`` zeros between the input pixels (``lhs_dilation``), pad
    ``d(k-1) - p_lo`` below and ``d(k-1) - p_hi + output_padding`` above (negative pads crop),
    and correlate with the kernel flipped in space and with its in/out channels swapped within
    each group. The other impls run the input gradient of that ``conv`` (the primitive
    ``dlref_conv_transpose``): the linear transpose of the reference's definition, im2col's
    ``col2im(x·Wᵀ)``, or the Pallas input-gradient kernel.

    Matches PyTorch's ``ConvTranspose1d/2d/3d`` (padding, output_padding, dilation, groups and
    its size rule), and ``jax.vjp`` of ``lax.conv_general_dilated`` with respect to its input.
    ``lax.conv_transpose`` has neither groups nor output_padding and pads the *dilated input*:
    for ``groups=1``,

    .. code-block:: python

        conv_transpose(x, w, stride=s, padding=p, output_padding=a, dilation=d)
        == lax.conv_transpose(x, w, (s,) * nd, [(d*(k-1) - p, d*(k-1) - p + a)] * nd,
                              rhs_dilation=(d,) * nd, dimension_numbers=("NHWC", "HWIO",
                              "NHWC"), transpose_kernel=True)

    (``w`` passed as the *forward* conv's HWIO kernel). The study guide's ``out = (in − 1)·s + k``
    is the case ``p = 0, d = 1, output_padding = 0`` (erratum 2, docs/errata.md).

    Args:
      x: input ``(N, *spatial, C_in_t)``; ``(N, C_in_t, *spatial)`` with ``layout="NCHW"``.
      w: kernel ``(*kernel, C_out_t // groups, C_in_t)`` — PyTorch's ``ConvTranspose`` weight
        ``(C_in_t, C_out_t // groups, *kernel)`` moved to channels-last, which is exactly the
        kernel of the forward ``conv`` this is the adjoint of. With ``layout="NCHW"`` pass
        PyTorch's weight as it is.
      stride: int or one int >= 1 per spatial dim.
      padding: int, a tuple of ints, or ``(lo, hi)`` pairs: what the forward conv padded,
        cropped from the full output. Strings are not accepted.
      output_padding: int or one int per dim, added on the high side; each must be smaller
        than the stride or the dilation of its dim (it picks one of the input sizes that a
        strided conv maps to the same size).
      dilation: int or one int >= 1 per spatial dim.
      groups: number of channel groups; must divide ``C_in_t``.
      layout: as :func:`conv`.
      impl: as :func:`conv` (each impl's input-gradient rule, see above).

    Returns:
      ``(N, *out, C_out_t)`` (``(N, C_out_t, *out)`` for ``"NCHW"``), in the input dtype.

    Raises:
      ValueError: rank or channel mismatches (``w.shape[-1]`` must equal ``C_in_t``), groups
        not dividing ``C_in_t``, stride or dilation < 1, negative padding or output_padding,
        output_padding not smaller than stride or dilation, padding leaving no output, an
        unknown padding string, layout or impl.
      TypeError: non-floating inputs; non-int arguments.

    Example:
      >>> x = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)   # d2l 14.10
      >>> w = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(2, 2, 1, 1)
      >>> conv_transpose(x, w)[0, :, :, 0]
      Array([[ 0.,  0.,  1.],
             [ 0.,  4.,  6.],
             [ 4., 12.,  9.]], dtype=float32)

    References:
      Dumoulin and Visin, "A guide to convolution arithmetic for deep learning", 2016, §4,
      https://arxiv.org/abs/1603.07285.
    """
    op = "conv_transpose"
    _check_impl(impl, op)
    x, w, nd = _to_channels_last(x, w, layout, op)
    groups = check_int(groups, "groups", op, minimum=1)
    c_in = x.shape[-1]
    if c_in % groups:
        raise ValueError(f"{op}: input channels C_in={c_in} must be divisible by groups={groups}")
    if w.shape[-1] != c_in:
        raise ValueError(
            f"{op}: the kernel's last dim w.shape[-1]={w.shape[-1]} must equal the input "
            f"channels C_in={c_in} (input/kernel channel mismatch; w is (*k, C_out/groups, C_in))"
        )
    stride = as_tuple(stride, nd, "stride", op, minimum=1)
    dilation = as_tuple(dilation, nd, "dilation", op, minimum=1)
    padding = normalize_padding(padding, nd, op, allow_strings=False)
    output_padding = as_tuple(output_padding, nd, "output_padding", op, minimum=0)
    k, sizes = w.shape[:nd], x.shape[1:-1]
    for a, s, d in zip(output_padding, stride, dilation):
        if a >= s and a >= d:
            raise ValueError(
                f"{op}: output_padding={output_padding} must be smaller than either the stride "
                f"{stride} or the dilation {dilation} in each dim (PyTorch's rule)"
            )
    out = []
    for i, (n, ki, s, a, d, (lo, hi)) in enumerate(
        zip(sizes, k, stride, output_padding, dilation, padding)
    ):
        size = conv_transpose_output_size(n, ki, s, 0, a, d) - lo - hi
        if size < 1:
            raise ValueError(
                f"{op}: padding {(lo, hi)} leaves no output along spatial dim {i} "
                f"((n-1)*s + d*(k-1) + output_padding + 1 - lo - hi = {size})"
            )
        out.append(size)
    # The forward conv this is the adjoint of: input (N, *out, C_out_t), the same kernel.
    u = jax.ShapeDtypeStruct((x.shape[0], *out, w.shape[-2] * groups), x.dtype)
    geo = conv_geometry(u, w, stride, padding, dilation, groups, op)
    y = _conv_transpose(impl, x, w, geo, output_padding)
    return jnp.moveaxis(y, -1, 1) if _channels_first(layout, nd, op) else y


def depthwise_separable_conv(
    x,
    w_depthwise,
    w_pointwise,
    *,
    stride=1,
    padding=0,
    dilation=1,
    layout="NHWC",
    impl="reference",
) -> jax.Array:
    r"""Depthwise-separable convolution: a depthwise conv, then a 1×1 (pointwise) conv.

    .. math::
        y = \mathrm{conv}\big(\mathrm{conv}(x, w_{dw}, \text{groups}=C_{in}), w_{pw}\big)

    Parameters: ``K^n·M·C_in + M·C_in·C_out`` against ``K^n·C_in·C_out`` for a full conv with
    the same field (channel multiplier ``M``), e.g. K=3, C_in=C_out=256, M=1: 67,840 vs 589,824
    (8.7× fewer). Matches MobileNet's block without BN/activation, and Keras'
    ``SeparableConv2D``; ``stride``, ``padding`` and ``dilation`` apply to the depthwise conv.

    Args:
      x: input ``(N, *spatial, C_in)`` (``(N, C_in, *spatial)`` for ``"NCHW"``).
      w_depthwise: ``(*kernel, 1, C_in·M)`` (``(C_in·M, 1, *kernel)`` for ``"NCHW"``).
      w_pointwise: ``(1, …, 1, C_in·M, C_out)`` (``(C_out, C_in·M, 1, …, 1)`` for ``"NCHW"``).
      stride: the depthwise conv's stride.
      padding: the depthwise conv's padding (any form :func:`conv` takes).
      dilation: the depthwise conv's dilation.
      layout: as :func:`conv`.
      impl: as :func:`conv`, used for both convolutions.

    Returns:
      ``(N, *out, C_out)`` (``(N, C_out, *out)`` for ``"NCHW"``).

    Raises:
      ValueError: a pointwise kernel that is not 1×1, or any error of :func:`conv`.
      TypeError: as :func:`conv`.

    Example:
      >>> x = jnp.ones((1, 4, 4, 2))
      >>> y = depthwise_separable_conv(x, jnp.ones((3, 3, 1, 2)), jnp.ones((1, 1, 2, 5)))
      >>> y.shape, float(y[0, 0, 0, 0])      # 9 taps x 2 channels
      ((1, 2, 2, 5), 18.0)

    References:
      Howard et al., "MobileNets", 2017, https://arxiv.org/abs/1704.04861.
      Chollet, "Xception", 2017, https://arxiv.org/abs/1610.02357.
    """
    op = "depthwise_separable_conv"
    _check_impl(impl, op)
    x = as_array(x, "x", op)
    w_dw, w_pw = as_array(w_depthwise, "w_depthwise", op), as_array(w_pointwise, "w_pointwise", op)
    for v, name in ((w_dw, "w_depthwise"), (w_pw, "w_pointwise")):
        if v.ndim not in (3, 4, 5) or v.ndim != x.ndim:
            raise ValueError(
                f"{op}: {name} must have rank 3, 4 or 5, the rank of x ({x.ndim}), got shape "
                f"{v.shape}"
            )
    nd = w_dw.ndim - 2
    first = _channels_first(layout, nd, op)
    spatial = w_pw.shape[2:] if first else w_pw.shape[:-2]
    if any(s != 1 for s in spatial):
        raise ValueError(
            f"{op}: the pointwise kernel must be 1x1 (spatial dims all 1), got w_pointwise of "
            f"shape {w_pw.shape}"
        )
    c_in = x.shape[1] if first else x.shape[-1]
    h = _conv_op(x, w_dw, stride, padding, dilation, c_in, layout, impl, op)
    return _conv_op(h, w_pw, 1, 0, 1, 1, layout, impl, op)
