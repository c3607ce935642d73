"""Pallas implicit-GEMM convolution: forward with a fused epilogue, and its backward kernels.

Implicit GEMM computes ``y = P · W`` (``P`` the im2col matrix, ``W`` the reshaped kernel)
without ever writing ``P``: a grid step owns a tile of ``block_m`` output pixels and
``block_n`` output channels and loops over the ``K = taps × C_in/g`` reduction, reading, for
each tap, a *shifted window* of the (once) padded input.

The index arithmetic that makes every window a contiguous 2-D slice:

1. Pad the input once (``lax.pad``; input-sized) and split each spatial dim into its ``s``
   stride *phases*: ``x_ph[n, (r_1..r_D), (q_1..q_D), c] = x_pad[n, q·s + r, c]`` (a reshape
   and a transpose; for stride 1 there is one phase and nothing moves). Flatten the phase
   grid ``(Q_1..Q_D)`` row-major to one axis of length ``L``.
2. Output pixel ``o`` reads ``x_pad[o·s + t·d]`` for tap ``t``. Write ``t·d = s·a + r``
   (``a = ⌊t·d/s⌋``, ``r = t·d mod s``): that element is ``x_ph[r, o + a]``. Flattening ``o``
   with the phase grid's strides (``m = Σ o_i·stride(Q)_i``, a "wide" output that includes
   ``Q_i - out_i`` garbage columns per row) turns ``o + a`` into ``m + Σ a_i·stride(Q)_i``: a
   *constant offset per tap*. So tap ``t`` of the tile ``m0..m0+block_m`` is the contiguous
   rows ``x_ph[r(t), m0 + off(t) : m0 + off(t) + block_m, channels]``.
3. The garbage columns are computed and sliced off at the end (``Q_i/out_i`` overhead, e.g.
   58/56 for a 3×3 at 56); the backward weight kernel sees them as zeros.

The GPU path lowers through Triton (``plgpu.CompilerParams``; block dims are powers of two,
channels are zero-padded to the block), the TPU path through Mosaic (``pltpu.CompilerParams``;
``block_m`` a multiple of 8, channel blocks of 128), and on the CPU the same kernels run in
Pallas' interpret mode.

Layout follows jax's ``pallas/ops/gpu/layer_norm.py``: the kernel bodies on refs; the
``pallas_call`` wrappers with the block choice (:func:`_plan_for`, the one place the blocks
and the path are resolved; the backend is resolved once per call by :func:`_options`); the
differentiation wiring (the ``"pallas"`` implementation of the convolution primitives of
:mod:`dlref.kernels.primitives`: forward, input-gradient and weight-gradient kernels, so
reverse and forward mode, at every order, run Pallas); and a plain-jnp reference of the
epilogue at the bottom, independent of the kernel's helpers.

This module uses ``dlref._checks`` and ``dlref.kernels`` only (never ``dlref.convolution``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl

from dlref import _checks
from dlref.kernels import primitives, tuning
from dlref.kernels.blocks import (
    ConvBlocks,
    ConvGeometry,
    choose_blocks,
    conv_geometry,
    input_grad_geometry,
    is_gemm_geometry,
    round_up,
    s2d_taps,
    target_device,
    weight_grad_geometry,
    wide_m,
)

__all__ = [
    "ACTIVATIONS",
    "PallasOptions",
    "epilogue_reference",
    "pallas_conv",
    "pallas_conv_input_grad",
    "pallas_conv_weight_grad",
    "poison_outputs",
]

ACTIVATIONS = primitives.ACTIVATIONS
_SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))

# ---------------------------------------------------------------------------------------------
# Kernels (bodies on refs).


def _div(a, b: int):
    """Floor division of a non-negative index (``lax.div`` for traced ints: Triton lowers
    jnp's sign-correcting ``//`` and ``%`` poorly)."""
    if isinstance(a, int):
        return a // b
    return lax.div(a, jnp.asarray(b, a.dtype))


def _rem(a, b: int):
    if isinstance(a, int):
        return a % b
    return lax.rem(a, jnp.asarray(b, a.dtype))


def _activate(z: jax.Array, activation: str, negative_slope: float) -> jax.Array:
    if activation == "relu":
        return jnp.maximum(z, 0)
    if activation == "leaky_relu":
        return jnp.where(z >= 0, z, z * negative_slope)
    if activation == "sigmoid":
        return 1 / (1 + jnp.exp(-z))
    if activation == "tanh":
        return jnp.tanh(z)
    return z


@dataclasses.dataclass(frozen=True)
class _Fused:
    """The forward kernels' epilogue settings.

    ``has`` says which of (bias, scale, shift, residual) are operands; ``emit_pre`` adds the
    pre-scale ``u`` as a second output.
    """

    has: tuple[bool, ...]
    activation: str
    negative_slope: float
    emit_pre: bool


def _conv_fwd_kernel(
    x_ref,
    w_ref,
    *rest,
    plan: _Plan,
    fused: _Fused,
):
    """One (image, pixel tile, channel tile): loop over taps × channel blocks, then epilogue."""
    blocks = plan.blocks
    bm = blocks.block_m
    i, j = pl.program_id(1), pl.program_id(2)
    m0 = i * bm
    acc_t = _checks.accumulation_dtype(x_ref.dtype)
    if plan.depthwise:
        bc = blocks.block_n
        c0 = j * bc

        def body(t, acc):
            phase, off = plan.tap(t)
            xs = x_ref[phase, pl.ds(m0 + off, bm), pl.ds(c0, bc)].astype(acc_t)
            ws = w_ref[pl.ds(t, 1), :].astype(acc_t)
            return acc + xs * ws

        acc = lax.fori_loop(0, plan.geo.taps, body, jnp.zeros((bm, bc), acc_t))
    else:
        bk = blocks.block_k
        n_k = plan.cin_p // bk
        n_nb = plan.cout_p // blocks.block_n
        cbase = _div(j, n_nb) * plan.cin_p

        taps = plan.geo.taps
        channel_major = blocks.loop_order == "channel_major"

        def body(r, acc):
            if channel_major:
                kb, t = _div(r, taps), _rem(r, taps)
            else:
                t, kb = _div(r, n_k), _rem(r, n_k)
            phase, off = plan.tap(t)
            xs = x_ref[phase, pl.ds(m0 + off, bm), pl.ds(cbase + kb * bk, bk)]
            ws = w_ref[t, pl.ds(kb * bk, bk), :]
            return acc + jnp.dot(xs, ws, preferred_element_type=acc_t)

        acc = lax.fori_loop(0, plan.geo.taps * n_k, body, jnp.zeros((bm, blocks.block_n), acc_t))
    _epilogue(acc, rest, fused)


def _epilogue(acc, rest, fused: _Fused):
    """Fused epilogue on the float32 tile: z = (acc + bias)·scale + shift + residual; act(z).

    ``rest`` are the kernel's refs after ``x`` and ``w``: the present per-channel vectors, the
    residual if present, then the outputs.
    """
    has = fused.has
    n_vec = sum(has[:3])
    vec_refs = rest[:n_vec]
    res_ref = rest[n_vec] if has[3] else None
    out_refs = rest[n_vec + has[3] :]
    acc_t = acc.dtype
    k = 0
    if has[0]:
        acc = acc + vec_refs[k][...].astype(acc_t)
        k += 1
    u = acc
    if has[1]:
        acc = acc * vec_refs[k][...].astype(acc_t)
        k += 1
    if has[2]:
        acc = acc + vec_refs[k][...].astype(acc_t)
    if has[3]:
        acc = acc + res_ref[...].astype(acc_t)
    out_refs[0][...] = _activate(acc, fused.activation, fused.negative_slope).astype(
        out_refs[0].dtype
    )
    if fused.emit_pre:
        out_refs[1][...] = u.astype(out_refs[1].dtype)


def _gemm_fwd_kernel(
    x_ref,
    w_ref,
    *rest,
    plan: _Plan,
    fused: _Fused,
):
    """The ``gemm`` path: one ``(block_m, block_n)`` tile of ``X (M, C_in) @ W (C_in, C_out)``
    over the flattened pixels of the whole batch, a loop over ``block_k`` channel steps, then
    the same epilogue."""
    bk = plan.blocks.block_k
    acc_t = _checks.accumulation_dtype(x_ref.dtype)

    def body(kb, acc):
        xs = x_ref[:, pl.ds(kb * bk, bk)]
        ws = w_ref[pl.ds(kb * bk, bk), :]
        return acc + jnp.dot(xs, ws, preferred_element_type=acc_t)

    shape = (plan.blocks.block_m, plan.blocks.block_n)
    acc = lax.fori_loop(0, plan.cin_p // bk, body, jnp.zeros(shape, acc_t))
    _epilogue(acc, rest, fused)


def _wgrad_kernel(x_ref, dy_ref, o_ref, *, plan: _Plan, per_split: int, n_mb: int):
    """Partial weight gradient: ``Σ_m x_window(t)[m, k-block]ᵀ dy[m, n-block]`` over a slice
    of the ``N × m``-tiles (one partial sum per split; summed outside)."""
    blocks = plan.blocks
    bm = blocks.block_m
    s, t = pl.program_id(0), pl.program_id(1)
    j = pl.program_id(2)
    acc_t = _checks.accumulation_dtype(x_ref.dtype)
    phase, off = plan.tap(t)
    if plan.depthwise:
        bc = blocks.block_n
        c0 = j * bc

        def body(l, acc):
            it = s * per_split + l
            n, mb = _div(it, n_mb), _rem(it, n_mb)
            xs = x_ref[n, phase, pl.ds(mb * bm + off, bm), pl.ds(c0, bc)].astype(acc_t)
            dys = dy_ref[n, pl.ds(mb * bm, bm), pl.ds(c0, bc)].astype(acc_t)
            return acc + jnp.sum(xs * dys, axis=0, keepdims=True)

        acc = lax.fori_loop(0, per_split, body, jnp.zeros((1, bc), acc_t))
    else:
        bk, bn = blocks.block_k, blocks.block_n
        n_k = plan.cin_p // bk
        n_nb = plan.cout_p // bn
        g, rest = _div(j, n_k * n_nb), _rem(j, n_k * n_nb)
        kb, nb = _div(rest, n_nb), _rem(rest, n_nb)

        def body(l, acc):
            it = s * per_split + l
            n, mb = _div(it, n_mb), _rem(it, n_mb)
            xs = x_ref[n, phase, pl.ds(mb * bm + off, bm), pl.ds(g * plan.cin_p + kb * bk, bk)]
            dys = dy_ref[n, pl.ds(mb * bm, bm), pl.ds(g * plan.cout_p + nb * bn, bn)]
            return acc + lax.dot_general(
                xs, dys, (((0,), (0,)), ((), ())), preferred_element_type=acc_t
            )

        acc = lax.fori_loop(0, per_split, body, jnp.zeros((bk, bn), acc_t))
    o_ref[...] = acc


# ---------------------------------------------------------------------------------------------
# Options and plan: the backend (once per call) and the blocks and path (one place).


@dataclasses.dataclass(frozen=True)
class PallasOptions:
    """What ``pallas_conv`` resolved when it was called (a hashable primitive parameter).

    Attributes:
      backend: ``"gpu"`` (Triton), ``"tpu"`` (Mosaic) or ``"interpret"``.
      interpret: ``False`` (compiled) or ``True`` (Pallas' generic interpreter).
      block: explicit :class:`ConvBlocks`, or ``None`` for the tuning table, else the heuristic.
      device_kind: the tuning table's device key (the target device's kind).
      poison: NaN-filled aliased output buffers (:func:`poison_outputs`).
    """

    backend: str
    interpret: Any
    block: ConvBlocks | None
    device_kind: str
    poison: bool = False


def _options(interpret: Any, block: Any, op: str) -> PallasOptions:
    """Resolve the backend (``interpret=None``: compiled on GPU/TPU, interpreted on the CPU)."""
    target = target_device()
    platform = target.platform
    if interpret is None:
        backend, interp = (platform, False) if platform in ("gpu", "tpu") else ("interpret", True)
    elif interpret is False:
        if platform not in ("gpu", "tpu"):
            raise NotImplementedError(
                f"{op}: compiled kernels need a GPU or TPU, the default backend is "
                f"{platform!r}; pass interpret=True"
            )
        backend, interp = platform, False
    elif interpret is True:
        backend, interp = "interpret", True
    else:
        # pltpu.InterpretParams: the TPU variant (its (8, 128) tiles and Mosaic parameters),
        # run by the generic interpreter. The TPU interpreter itself simulates TPU memory with
        # ordered callbacks, effects that a primitive's lowering cannot carry.
        backend, interp = "tpu", True
    if block is not None and not isinstance(block, ConvBlocks):
        raise TypeError(f"{op}: block must be a ConvBlocks, got {type(block).__name__}")
    return PallasOptions(backend, interp, block, target.device_kind, _POISON.get())


@dataclasses.dataclass(frozen=True)
class _Plan:
    geo: ConvGeometry
    depthwise: bool  # C_in/g == 1: an elementwise kernel, no dot
    phases: int  # prod(stride)
    q_sizes: tuple[int, ...]  # phase-grid sizes Q_i = ceil(padded_i / s_i)
    q_strides: tuple[int, ...]  # row-major strides of the phase grid
    m_wide: int  # out_0 * prod(Q_1..)
    m_pad: int  # m_wide rounded up to block_m
    length: int  # flattened phase-grid length, covering every tap's window
    cin_g: int
    cout_g: int
    cin_p: int  # per-group channel counts padded to the blocks
    cout_p: int
    blocks: ConvBlocks
    backend: str  # "gpu", "tpu" or "interpret"
    interpret: Any
    poison: bool

    def tap(self, t):
        """Phase index and flat offset of tap ``t`` (works on ints and traced int scalars)."""
        geo = self.geo
        phase, offset = 0, 0
        rem = t
        for i in reversed(range(geo.nd)):
            ki = _rem(rem, geo.kernel[i])
            rem = _div(rem, geo.kernel[i])
            shift = ki * geo.dilation[i]
            r, a = _rem(shift, geo.stride[i]), _div(shift, geo.stride[i])
            pstride = math.prod(geo.stride[i + 1 :])
            phase = phase + r * pstride
            offset = offset + a * self.q_strides[i]
        return phase, offset

    @property
    def max_offset(self) -> int:
        return max(self.tap(t)[1] for t in range(self.geo.taps))


def _choose(geo: ConvGeometry, dtype, options: PallasOptions) -> ConvBlocks:
    if options.block is not None:
        return options.block
    g = geo.groups
    return choose_blocks(
        geo.c_in // g,
        geo.c_out // g,
        wide_m(geo),
        dtype,
        backend="tpu" if options.backend == "tpu" else "gpu",
        geometry=geo,
        device_kind=options.device_kind,
        table=tuning.default_table(),
    )


def _plan_for(geo: ConvGeometry, dtype, options: PallasOptions):
    """The one place the blocks and the path are chosen and checked: ``(plan, s2d)``.

    ``s2d`` is ``None``, or the ``fold_kw`` flag of the ``small_cin`` path, whose plan is for
    the space-to-depth geometry (:func:`_s2d_geometry`).

    Raises:
      NotImplementedError: blocks the compiled kernels cannot run (Triton: powers of two >=
        16; TPU: the (8, 128) tiling), the gemm path on a non-gemm geometry, small_cin with
        groups, or a dtype the compiled kernels do not support.
    """
    dtype = jnp.dtype(dtype)
    if options.backend != "interpret" and dtype not in _SUPPORTED_DTYPES:
        raise NotImplementedError(
            f"pallas_conv: compiled kernels support float32, bfloat16 and float16, got {dtype}"
        )
    blocks = _choose(geo, dtype, options)
    s2d = None
    if blocks.path == "small_cin":
        if geo.groups != 1:
            raise NotImplementedError(
                f"pallas_conv: the small_cin path needs groups=1, got groups={geo.groups}"
            )
        s2d = blocks.fold_kw
        geo = _s2d_geometry(geo, s2d)
        blocks = dataclasses.replace(blocks, path="implicit", fold_kw=False)
    return _make_plan(geo, blocks, options), s2d


def _make_plan(geo: ConvGeometry, block: ConvBlocks, options: PallasOptions) -> _Plan:
    g = geo.groups
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    depthwise = cin_g == 1 and g > 1
    padded = [n + lo + hi for n, (lo, hi) in zip(geo.in_sizes, geo.padding, strict=True)]
    q_sizes = tuple(-(-p // s) for p, s in zip(padded, geo.stride, strict=True))
    q_strides = tuple(math.prod(q_sizes[i + 1 :]) for i in range(geo.nd))
    m_wide = geo.out_sizes[0] * q_strides[0]
    if block.path == "gemm" and not is_gemm_geometry(geo):
        raise NotImplementedError(
            f"pallas_conv: the gemm path needs a 1x1 kernel, stride 1, no padding and groups=1, "
            f"got kernel={geo.kernel}, stride={geo.stride}, padding={geo.padding}, "
            f"groups={geo.groups}"
        )
    bm, bn, bk = block.block_m, block.block_n, block.block_k
    backend = options.backend
    if backend == "gpu":
        for name, v in (("block_m", bm), ("block_n", bn), ("block_k", bk)):
            if v < 16 or v & (v - 1):
                raise NotImplementedError(
                    f"pallas_conv: Triton needs power-of-two blocks >= 16, got {name}={v}"
                )
    if backend == "tpu" and (bm % 8 or bn % 128 or bk % 128):
        raise NotImplementedError(
            f"pallas_conv: TPU blocks must respect the (8, 128) tiling, got block_m={bm}, "
            f"block_n={bn}, block_k={bk}"
        )
    if depthwise:
        # Depthwise: channel c*mult + j reads input channel c (the wrapper repeats it).
        cin_p = cout_p = round_up(geo.c_out, bn)
    else:
        cin_p, cout_p = round_up(cin_g, bk), round_up(cout_g, bn)
    m_pad = round_up(m_wide, bm)
    plan = _Plan(
        geo,
        depthwise,
        math.prod(geo.stride),
        q_sizes,
        q_strides,
        m_wide,
        m_pad,
        0,
        cin_g,
        cout_g,
        cin_p,
        cout_p,
        block,
        backend,
        options.interpret,
        options.poison,
    )
    length = max(math.prod(q_sizes), m_pad + plan.max_offset)
    return dataclasses.replace(plan, length=round_up(length, 8))


# ---------------------------------------------------------------------------------------------
# The small_cin transform (space-to-depth), in XLA around the kernels.


def _s2d_layout(geo: ConvGeometry, fold_kw: bool):
    """``(taps, dilation, step, q_sizes)`` of the space-to-depth conv."""
    nd = geo.nd
    strided = math.prod(geo.stride) > 1
    taps = s2d_taps(geo) if strided else geo.kernel
    dil = (1,) * nd if strided else geo.dilation
    step = geo.stride if strided else (1,) * nd
    q_sizes = tuple(geo.out_sizes[i] + (taps[i] - 1) * dil[i] for i in range(nd))
    return taps, dil, step, q_sizes


def _s2d_geometry(geo: ConvGeometry, fold_kw: bool) -> ConvGeometry:
    """The equivalent stride-1, unpadded conv of the ``small_cin`` path."""
    nd = geo.nd
    taps, dil, step, q_sizes = _s2d_layout(geo, fold_kw)
    c = math.prod(step) * geo.c_in
    sizes = q_sizes
    if fold_kw:
        sizes = (*q_sizes[:-1], geo.out_sizes[-1])
        c, taps, dil = taps[-1] * c, (*taps[:-1], 1), (*dil[:-1], 1)
    return ConvGeometry(
        tuple(sizes),
        tuple(taps),
        (1,) * nd,
        ((0, 0),) * nd,
        tuple(dil),
        geo.out_sizes,
        1,
        c,
        geo.c_out,
    )


def _s2d_input(x: jax.Array, geo: ConvGeometry, fold_kw: bool) -> jax.Array:
    """``x'[n, q, (r, c)] = x_pad[n, q·s + r, c]`` (and, with ``fold_kw``, the last dim's taps
    stacked into the channels: ``k_w`` shifted copies)."""
    nd = geo.nd
    taps, dil, step, q_sizes = _s2d_layout(geo, fold_kw)
    cfg = [(0, 0, 0)]
    for i in range(nd):
        lo = geo.padding[i][0]
        cfg.append((lo, q_sizes[i] * step[i] - geo.in_sizes[i] - lo, 0))
    cfg.append((0, 0, 0))
    xp = lax.pad(x, jnp.zeros((), x.dtype), cfg)
    n, c = x.shape[0], geo.c_in
    if math.prod(step) > 1:
        split = [n]
        for q, st in zip(q_sizes, step, strict=True):
            split += [q, st]
        perm = [0] + [1 + 2 * i for i in range(nd)] + [2 + 2 * i for i in range(nd)]
        xp = xp.reshape(*split, c).transpose(*perm, 2 * nd + 1)
        xp = xp.reshape(n, *q_sizes, math.prod(step) * c)
    if fold_kw:
        a_w, o_w, d_w = taps[-1], geo.out_sizes[-1], dil[-1]
        xp = jnp.concatenate(
            [lax.slice_in_dim(xp, a * d_w, a * d_w + o_w, axis=nd) for a in range(a_w)], -1
        )
    return xp


def _s2d_taps_index(geo: ConvGeometry, step) -> tuple:
    """For every tap ``t`` (a grid over the kernel): ``(a, r)`` with ``t·d = a·s + r``."""
    grids = np.meshgrid(*[np.arange(k) for k in geo.kernel], indexing="ij")
    offs = [t * d for t, d in zip(grids, geo.dilation, strict=True)]
    a_idx = tuple(o // st for o, st in zip(offs, step, strict=True))
    r_idx = tuple(o % st for o, st in zip(offs, step, strict=True))
    return a_idx + r_idx


def _s2d_weight(w: jax.Array, geo: ConvGeometry, fold_kw: bool) -> jax.Array:
    """Scatter tap ``t`` of the kernel to ``w'[a, (r, c)]`` with ``t·d = a·s + r`` (zeros
    elsewhere): ``x'`` at ``q = o + a``, phase ``r``, is ``x_pad[o·s + t·d]``, so
    ``conv(x', w')[o] = conv(x, w)[o]`` exactly."""
    taps, _, step, _ = _s2d_layout(geo, fold_kw)
    c = geo.c_in
    if math.prod(step) > 1:
        wz = jnp.zeros((*taps, *step, c, geo.c_out), w.dtype)
        w = wz.at[_s2d_taps_index(geo, step)].set(w)
    return w.reshape(*_s2d_geometry(geo, fold_kw).w_shape())


def _s2d_weight_grad(dw2: jax.Array, geo: ConvGeometry, fold_kw: bool) -> jax.Array:
    """The adjoint of :func:`_s2d_weight`: gather each tap's gradient back from ``w'``."""
    taps, _, step, _ = _s2d_layout(geo, fold_kw)
    if math.prod(step) > 1:
        dw2 = dw2.reshape(*taps, *step, geo.c_in, geo.c_out)[_s2d_taps_index(geo, step)]
    return dw2.reshape(geo.w_shape())


def _dispatch(x: jax.Array, w: jax.Array, geo: ConvGeometry, options: PallasOptions):
    """The plan, with the ``small_cin`` transform applied to ``x`` and ``w``: ``(x, w, plan)``."""
    plan, s2d = _plan_for(geo, x.dtype, options)
    if s2d is not None:
        x, w = _s2d_input(x, geo, s2d), _s2d_weight(w, geo, s2d)
    return x, w, plan


# ---------------------------------------------------------------------------------------------
# Layout transforms (input-sized, never patch-sized).


def _phase_split(x: jax.Array, plan: _Plan) -> jax.Array:
    """``(N, *spatial, C)`` -> ``(N, phases, length, C)``: padded, phase-split, flattened."""
    geo, nd = plan.geo, plan.geo.nd
    n, c = x.shape[0], x.shape[-1]
    cfg = [(0, 0, 0)]
    for (lo, _hi), size, q, s in zip(
        geo.padding, geo.in_sizes, plan.q_sizes, geo.stride, strict=True
    ):
        cfg.append((lo, q * s - size - lo, 0))  # pad, then round each dim up to q*s
    cfg.append((0, 0, 0))
    xp = lax.pad(x, jnp.zeros((), x.dtype), cfg)
    if plan.phases > 1:
        split = [n]
        for q, s in zip(plan.q_sizes, geo.stride, strict=True):
            split += [q, s]
        xp = xp.reshape(*split, c)
        perm = [0] + [2 + 2 * i for i in range(nd)] + [1 + 2 * i for i in range(nd)]
        xp = xp.transpose(*perm, 2 * nd + 1)
    xp = xp.reshape(n, plan.phases, math.prod(plan.q_sizes), c)
    extra = plan.length - math.prod(plan.q_sizes)
    return jnp.pad(xp, ((0, 0), (0, 0), (0, extra), (0, 0)))


def _group_pad_channels(a: jax.Array, groups: int, per: int, per_p: int) -> jax.Array:
    """Pad the last axis (``groups * per`` channels) to ``groups * per_p``, group by group."""
    if per == per_p:
        return a
    lead = a.shape[:-1]
    a = a.reshape(*lead, groups, per)
    a = jnp.pad(a, [(0, 0)] * (len(lead) + 1) + [(0, per_p - per)])
    return a.reshape(*lead, groups * per_p)


def _to_wide(y: jax.Array, plan: _Plan) -> jax.Array:
    """``(N, *out, C)`` -> ``(N, m_pad, C)`` with zeros in the garbage columns."""
    geo = plan.geo
    n, c = y.shape[0], y.shape[-1]
    cfg = [(0, 0), (0, 0)]
    cfg += [(0, q - o) for q, o in zip(plan.q_sizes[1:], geo.out_sizes[1:], strict=True)]
    y = jnp.pad(y, cfg + [(0, 0)]).reshape(n, plan.m_wide, c)
    return jnp.pad(y, ((0, 0), (0, plan.m_pad - plan.m_wide), (0, 0)))


def _from_wide(y: jax.Array, plan: _Plan) -> jax.Array:
    """``(N, m_pad, C)`` -> ``(N, *out, C)``."""
    geo = plan.geo
    n, c = y.shape[0], y.shape[-1]
    y = y[:, : plan.m_wide].reshape(n, geo.out_sizes[0], *plan.q_sizes[1:], c)
    return y[(slice(None),) + tuple(slice(0, o) for o in geo.out_sizes) + (slice(None),)]


def _out_channels(a: jax.Array, plan: _Plan) -> jax.Array:
    """The kernel's padded channel layout -> the real ``C_out`` channels."""
    if plan.depthwise:
        return a[..., : plan.geo.c_out]
    g = plan.geo.groups
    lead = a.shape[:-1]
    a = a.reshape(*lead, g, plan.cout_p)[..., : plan.cout_g]
    return a.reshape(*lead, g * plan.cout_g)


def _pad_out_channels(a: jax.Array, plan: _Plan) -> jax.Array:
    if plan.depthwise:
        return jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, plan.cout_p - a.shape[-1])])
    return _group_pad_channels(a, plan.geo.groups, plan.cout_g, plan.cout_p)


def _prep_input(x: jax.Array, plan: _Plan) -> jax.Array:
    if plan.depthwise:
        mult = plan.geo.c_out // plan.geo.c_in
        if mult > 1:
            x = jnp.repeat(x, mult, axis=-1)
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, plan.cin_p - x.shape[-1])])
    else:
        x = _group_pad_channels(x, plan.geo.groups, plan.cin_g, plan.cin_p)
    return _phase_split(x, plan)


def _prep_weight(w: jax.Array, plan: _Plan) -> jax.Array:
    """HWIO -> ``(G, T, cin_p, cout_p)`` (dense) or ``(T, cout_p)`` (depthwise)."""
    geo = plan.geo
    if plan.depthwise:
        wd = w.reshape(geo.taps, geo.c_out)
        return jnp.pad(wd, ((0, 0), (0, plan.cout_p - geo.c_out)))
    g = geo.groups
    wm = w.reshape(geo.taps, plan.cin_g, g, plan.cout_g).transpose(2, 0, 1, 3)
    return jnp.pad(
        wm, ((0, 0), (0, 0), (0, plan.cin_p - plan.cin_g), (0, plan.cout_p - plan.cout_g))
    )


def _compiler_params(plan: _Plan, n_grid: int):
    if plan.backend == "gpu":
        from jax.experimental.pallas import triton as plgpu

        return plgpu.CompilerParams(
            num_warps=plan.blocks.num_warps, num_stages=plan.blocks.num_stages
        )
    if plan.backend == "tpu":
        from jax.experimental.pallas import tpu as pltpu

        return pltpu.CompilerParams(dimension_semantics=("parallel",) * n_grid)
    return None


# ---------------------------------------------------------------------------------------------
# pallas_call wrappers.

_POISON = contextvars.ContextVar("dlref_pallas_poison", default=False)


@contextlib.contextmanager
def poison_outputs(enabled: bool = True):
    """Trace the kernels with NaN-filled output buffers, so that an unwritten tile shows.

    Inside this context (read at trace time: jit, lower or compile inside it) every
    ``pallas_call`` of this module gets a NaN-filled buffer aliased to each output
    (``input_output_aliases``): a tile the grid never stores stays NaN instead of holding
    whatever the allocator left there (possibly a previous correct result). For correctness
    checks (``bench/gpu_check.py``, the tests), not for timing.

    Args:
      enabled: poison (``True``) or not.

    Example:
      >>> with poison_outputs():
      ...     y = pallas_conv(jnp.ones((1, 3, 1)), jnp.ones((1, 1, 1)))
      >>> y[0, :, 0]
      Array([1., 1., 1.], dtype=float32)
    """
    token = _POISON.set(bool(enabled))
    try:
        yield
    finally:
        _POISON.reset(token)


def _call(kernel, args, *, out_shape, grid, in_specs, out_specs, plan, name):
    """``pl.pallas_call`` with this module's compiler params, and poisoning when asked."""
    args, in_specs = list(args), list(in_specs)
    aliases = {}
    if plan.poison:
        n_in, n_out = len(args), len(out_shape)
        for k, (sds, spec) in enumerate(zip(out_shape, out_specs, strict=True)):
            aliases[len(args)] = k
            args.append(jnp.full(sds.shape, jnp.nan, sds.dtype))
            in_specs.append(spec)
        inner = kernel

        def kernel(*refs):  # the aliased NaN inputs are never read
            return inner(*refs[:n_in], *refs[n_in + n_out :])

    return pl.pallas_call(
        kernel,
        out_shape=out_shape,
        grid=grid,
        in_specs=in_specs,
        out_specs=out_specs,
        input_output_aliases=aliases,
        interpret=plan.interpret,
        compiler_params=_compiler_params(plan, len(grid)),
        name=name,
    )(*args)


def _forward_pallas_call(
    body,
    args,
    in_specs,
    epilogue,
    *,
    grid,
    vec_spec,
    out_spec,
    out_struct,
    plan,
    fused,
    name,
):
    """The forward kernels' common tail: the epilogue operands, one or two outputs, the call.

    ``epilogue`` is ``(bias, scale, shift, residual)``, each ``None`` when absent (as
    ``fused.has`` says); the per-channel vectors are padded here and read with ``vec_spec``;
    ``residual`` comes already laid out as the output (and is read with ``out_spec``). ``y``
    (and the pre-scale ``u`` if ``fused.emit_pre``) are ``out_struct`` arrays written with
    ``out_spec``.
    """
    args, in_specs = list(args), list(in_specs)
    *vectors, residual = epilogue
    for v in vectors:
        if v is not None:
            args.append(_pad_out_channels(v.reshape(1, plan.geo.c_out), plan))
            in_specs.append(vec_spec)
    if residual is not None:
        args.append(residual)
        in_specs.append(out_spec)
    n_out = 1 + fused.emit_pre
    return _call(
        functools.partial(body, plan=plan, fused=fused),
        args,
        out_shape=[out_struct] * n_out,
        grid=grid,
        in_specs=in_specs,
        out_specs=[out_spec] * n_out,
        plan=plan,
        name=name,
    )


def _gemm_forward_call(x, w, bias, scale, shift, residual, plan, fused, out_dtype):
    """The ``gemm`` path's forward: the batch's pixels flattened into one ``M`` axis."""
    geo, blocks = plan.geo, plan.blocks
    bm, bn = blocks.block_m, blocks.block_n
    n = x.shape[0]
    m = n * math.prod(geo.in_sizes)
    m_pad = round_up(m, bm)
    xm = jnp.pad(x.reshape(m, geo.c_in), ((0, m_pad - m), (0, plan.cin_p - geo.c_in)))
    wm = w.reshape(geo.c_in, geo.c_out)
    wm = jnp.pad(wm, ((0, plan.cin_p - geo.c_in), (0, plan.cout_p - geo.c_out)))
    grid = (m_pad // bm, plan.cout_p // bn)
    in_specs = [
        pl.BlockSpec((bm, plan.cin_p), lambda i, j: (i, 0)),
        pl.BlockSpec((plan.cin_p, bn), lambda i, j: (0, j)),
    ]
    if residual is not None:
        r = _pad_out_channels(residual.reshape(m, geo.c_out), plan)
        residual = jnp.pad(r, ((0, m_pad - m), (0, 0)))
    outs = _forward_pallas_call(
        _gemm_fwd_kernel,
        [xm, wm],
        in_specs,
        (bias, scale, shift, residual),
        grid=grid,
        vec_spec=pl.BlockSpec((1, bn), lambda i, j: (0, j)),
        out_spec=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
        out_struct=jax.ShapeDtypeStruct((m_pad, plan.cout_p), out_dtype),
        plan=plan,
        fused=fused,
        name="dlref_conv_gemm",
    )
    return [o[:m, : geo.c_out].reshape(n, *geo.out_sizes, geo.c_out) for o in outs]


def _forward_call(x, w, bias, scale, shift, residual, plan, activation, slope, out_dtype, emit_pre):
    """Run the forward kernel; returns ``y`` (and the pre-scale ``u`` if ``emit_pre``)."""
    has = tuple(v is not None for v in (bias, scale, shift, residual))
    fused = _Fused(has, activation, slope, emit_pre)
    if plan.blocks.path == "gemm":
        return _gemm_forward_call(x, w, bias, scale, shift, residual, plan, fused, out_dtype)
    geo, blocks = plan.geo, plan.blocks
    n = x.shape[0]
    xk = _prep_input(x, plan)
    wk = _prep_weight(w, plan)
    bm, bn = blocks.block_m, blocks.block_n
    n_m = plan.m_pad // bm
    g = 1 if plan.depthwise else geo.groups
    n_nb = plan.cout_p // bn
    grid = (n, n_m, g * n_nb)
    cols = g * plan.cout_p
    in_specs = [
        pl.BlockSpec((None, plan.phases, plan.length, xk.shape[-1]), lambda b, i, j: (b, 0, 0, 0))
    ]
    if plan.depthwise:
        in_specs.append(pl.BlockSpec((geo.taps, bn), lambda b, i, j: (0, j)))
    else:
        in_specs.append(
            pl.BlockSpec(
                (None, geo.taps, plan.cin_p, bn),
                lambda b, i, j: (_div(j, n_nb), 0, 0, _rem(j, n_nb)),
            )
        )
    residual = None if residual is None else _to_wide(_pad_out_channels(residual, plan), plan)
    outs = _forward_pallas_call(
        _conv_fwd_kernel,
        [xk, wk],
        in_specs,
        (bias, scale, shift, residual),
        grid=grid,
        vec_spec=pl.BlockSpec((1, bn), lambda b, i, j: (0, j)),
        out_spec=pl.BlockSpec((None, bm, bn), lambda b, i, j: (b, i, j)),
        out_struct=jax.ShapeDtypeStruct((n, plan.m_pad, cols), out_dtype),
        plan=plan,
        fused=fused,
        name="dlref_conv_fwd",
    )
    return [_out_channels(_from_wide(o, plan), plan) for o in outs]


def _wgrad_call(x, dy, plan, w_dtype):
    """Weight gradient ``(*k, C_in/g, C_out)`` as split partial sums of a Pallas reduction."""
    geo, blocks = plan.geo, plan.blocks
    n = x.shape[0]
    bm, bn, bk = blocks.block_m, blocks.block_n, blocks.block_k
    if plan.blocks.path == "gemm":
        # 1×1, stride 1: the batch's pixels as one flat axis (image "0", one tap at offset 0),
        # so no per-image padding of M to block_m.
        m = n * math.prod(geo.in_sizes)
        m_pad = round_up(m, bm)
        xk = jnp.pad(x.reshape(m, geo.c_in), ((0, m_pad - m), (0, plan.cin_p - geo.c_in)))
        xk = xk.reshape(1, 1, m_pad, plan.cin_p)
        dyk = _pad_out_channels(dy.reshape(m, geo.c_out), plan)
        dyk = jnp.pad(dyk, ((0, m_pad - m), (0, 0))).reshape(1, m_pad, plan.cout_p)
        n, n_mb = 1, m_pad // bm
    else:
        xk = _prep_input(x, plan)
        dyk = _to_wide(_pad_out_channels(dy, plan), plan)
        n_mb = plan.m_pad // bm
    items = n * n_mb
    want = blocks.wgrad_splits or max(1, min(items, 32))
    splits = max(d for d in range(1, min(want, items) + 1) if items % d == 0)
    per_split = items // splits
    acc_t = _checks.accumulation_dtype(xk.dtype)
    if plan.depthwise:
        n_j = plan.cout_p // bn
        out_shape = jax.ShapeDtypeStruct((splits, geo.taps, 1, plan.cout_p), acc_t)
        out_spec = pl.BlockSpec((None, None, 1, bn), lambda s, t, j: (s, t, 0, j))
    else:
        n_k, n_nb = plan.cin_p // bk, plan.cout_p // bn
        n_j = geo.groups * n_k * n_nb
        out_shape = jax.ShapeDtypeStruct(
            (splits, geo.groups, geo.taps, plan.cin_p, plan.cout_p), acc_t
        )

        def out_index(s, t, j):
            g, r = _div(j, n_k * n_nb), _rem(j, n_k * n_nb)
            return (s, g, t, _div(r, n_nb), _rem(r, n_nb))

        out_spec = pl.BlockSpec((None, None, None, bk, bn), out_index)
    grid = (splits, geo.taps, n_j)
    (part,) = _call(
        functools.partial(_wgrad_kernel, plan=plan, per_split=per_split, n_mb=n_mb),
        [xk, dyk],
        out_shape=[out_shape],
        grid=grid,
        in_specs=[
            pl.BlockSpec(xk.shape, lambda s, t, j: (0, 0, 0, 0)),
            pl.BlockSpec(dyk.shape, lambda s, t, j: (0, 0, 0)),
        ],
        out_specs=[out_spec],
        plan=plan,
        name="dlref_conv_wgrad",
    )
    total = part.sum(axis=0)
    if plan.depthwise:
        dw = total[:, 0, : geo.c_out].reshape(*geo.kernel, 1, geo.c_out)
    else:
        dw = total[:, :, : plan.cin_g, : plan.cout_g].transpose(1, 2, 0, 3)
        dw = dw.reshape(*geo.kernel, plan.cin_g, geo.c_out)
    return dw.astype(w_dtype)


def _input_grad_call(dy, w, geo: ConvGeometry, options: PallasOptions):
    """``dx`` = stride-1 conv of the dilated, padded ``dy`` with the flipped, transposed kernel,
    run by the same forward kernel."""
    nd, g = geo.nd, geo.groups
    cfg = [(0, 0, 0)]
    for i in range(nd):
        k, s, d = geo.kernel[i], geo.stride[i], geo.dilation[i]
        lo, _ = geo.padding[i]
        span = d * (k - 1)
        hi_t = geo.in_sizes[i] - 1 - (geo.out_sizes[i] - 1) * s + lo
        cfg.append((span - lo, hi_t, s - 1))
    cfg.append((0, 0, 0))
    dyp = lax.pad(dy, jnp.zeros((), dy.dtype), cfg)
    # Flip the taps and swap I/O within each group: (*k, Cg_in, G, Cg_out) -> (*k, Cg_out, G·Cg_in)
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    wt = lax.rev(w, tuple(range(nd))).reshape(*geo.kernel, cin_g, g, cout_g)
    perm = (*range(nd), nd + 2, nd + 1, nd)
    wt = wt.transpose(perm).reshape(*geo.kernel, cout_g, g * cin_g).astype(dy.dtype)
    geo_t = ConvGeometry(
        tuple(dyp.shape[1:-1]),
        geo.kernel,
        (1,) * nd,
        ((0, 0),) * nd,
        geo.dilation,
        geo.in_sizes,
        g,
        geo.c_out,
        geo.c_in,
    )
    dyp, wt, plan_t = _dispatch(dyp, wt, geo_t, options)
    (dx,) = _forward_call(dyp, wt, None, None, None, None, plan_t, "none", 0.0, dy.dtype, False)
    return dx


# ---------------------------------------------------------------------------------------------
# Differentiation wiring: the "pallas" implementation of the convolution primitives.


def _fused_forward(x, w, bias, scale, shift, residual, geo, options, epilogue):
    x, w, plan = _dispatch(x, w, geo, options)
    return _forward_call(
        x,
        w,
        bias,
        scale,
        shift,
        residual,
        plan,
        epilogue.activation,
        epilogue.negative_slope,
        epilogue.dtype(x.dtype),
        epilogue.emit_pre,
    )


def _forward(x, w, geo, options):
    plain = primitives.Epilogue()
    return _fused_forward(x, w, None, None, None, None, geo, options, plain)[0]


def _weight_grad(x, dy, geo, options):
    plan, s2d = _plan_for(geo, x.dtype, options)
    if s2d is None:
        return _wgrad_call(x, dy, plan, x.dtype)
    # small_cin: the gradient of the space-to-depth kernel, pulled back through its scatter.
    dw2 = _wgrad_call(_s2d_input(x, geo, s2d), dy, plan, x.dtype)
    return _s2d_weight_grad(dw2, geo, s2d)


primitives.register_impl(
    primitives.ConvImpl(
        "pallas",
        forward=_forward,
        input_grad=_input_grad_call,
        weight_grad=_weight_grad,
        fused_forward=_fused_forward,
        partition=True,
    )
)


def _check_out_dtype(dtype, options: PallasOptions) -> None:
    if options.backend != "interpret" and jnp.dtype(dtype) not in _SUPPORTED_DTYPES:
        raise NotImplementedError(
            f"pallas_conv: compiled kernels support float32, bfloat16 and float16, got {dtype}"
        )


def _check_batch(n: int, op: str) -> None:
    """The kernels' grids need at least one example (an empty grid does not lower)."""
    if n < 1:
        raise ValueError(f"{op}: the batch must hold at least one example, got N={n}")


def pallas_conv(
    x,
    w,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    bias=None,
    scale=None,
    shift=None,
    residual=None,
    activation="none",
    negative_slope=0.01,
    out_dtype=None,
    block=None,
    interpret=None,
):
    r"""Convolution by a Pallas implicit-GEMM kernel, with a fused epilogue.

    .. math::
        u = \operatorname{conv}(x, w) + b, \qquad
        y = \operatorname{act}\big(u \cdot \gamma + \beta + r\big)

    computed tile by tile: a program owns ``block_m`` output pixels × ``block_n`` output
    channels and accumulates ``Σ_{t, c} x_{pad}[o·s + t·d, c]·w[t, c, :]`` in float32 over the
    taps ``t`` and channel blocks ``c``, reading each tap as a shifted window of the padded,
    stride-phase-split input (see the module docstring for the index arithmetic), so the
    ``prod(k)``-times-larger im2col matrix is never written. The epilogue (bias ``b``,
    per-channel ``γ`` and ``β`` of a folded batch norm, residual ``r``, activation) runs on
    the accumulator before the single store in ``out_dtype``.

    Kernel paths (:class:`ConvBlocks`, from :func:`dlref.kernels.blocks.choose_blocks`: the
    tuning table, else a heuristic): ``"implicit"`` as above; ``"gemm"`` for 1×1 stride-1
    unpadded convs, a plain tiled matmul over the batch's flattened pixels; ``"small_cin"`` for
    few input channels (the stem), which first moves the stride phases into the channels
    (space-to-depth) so the kernel runs an equivalent stride-1 conv with fewer, deeper taps.

    Differentiable under every transformation, at every order (a ``dlref_conv`` primitive,
    :mod:`dlref.kernels.primitives`): reverse mode differentiates the epilogue in jnp
    (relu'(0) = 0, leaky_relu'(0) = 1) around the forward kernel (which then also stores
    ``u``), then runs two Pallas kernels: the input gradient (:func:`pallas_conv_input_grad`,
    the forward kernel on the dilated, padded output gradient with the flipped kernel) and the
    weight gradient (:func:`pallas_conv_weight_grad`, a reduction over the ``N·H_out·W_out``
    pixels split into independent partial sums). Forward mode runs the forward kernel on the
    tangents; second derivatives run these kernels again. ``vmap`` folds the mapped axis into
    the batch (or the groups or channels). With the batch sharded over devices
    (``jax.sharding``), each device runs the kernels on its shard.

    Matches ``lax.conv_general_dilated`` (NHWC / HWIO) followed by the same epilogue in jnp
    (:func:`epilogue_reference`), values and gradients, to float32 accumulation.

    Args:
      x: input ``(N, *spatial, C_in)``, 1 to 3 spatial dims; float32, bfloat16 or float16
        (float64 in interpret mode).
      w: kernel ``(*kernel, C_in // groups, C_out)``.
      stride: an int or one per spatial dimension.
      padding: any dlref padding form (int, ints, ``(lo, hi)`` pairs, ``"VALID"``, ``"SAME"``).
      dilation: an int or one per spatial dimension.
      groups: channel groups (plain, grouped and depthwise, with any channel multiplier).
      bias: optional ``(C_out,)`` added to the convolution.
      scale: optional ``(C_out,)`` per-channel scale (``γ/√(σ² + ε)`` of a folded BN).
      shift: optional ``(C_out,)`` per-channel shift added after the scale.
      residual: optional ``(N, *out, C_out)`` added before the activation.
      activation: ``"none"``, ``"relu"``, ``"leaky_relu"``, ``"sigmoid"`` or ``"tanh"``.
      negative_slope: slope of ``leaky_relu`` for negative inputs.
      out_dtype: output dtype; ``x.dtype`` by default.
      block: a :class:`ConvBlocks`; ``None`` picks one with ``choose_blocks``.
      interpret: ``None`` compiles on a GPU (Triton) or TPU (Mosaic) and interprets on the
        CPU; ``True`` forces the generic interpreter; a ``pltpu.InterpretParams`` runs the
        TPU variant (its (8, 128) tiling) in the generic interpreter (the TPU interpreter's
        ordered callbacks cannot run inside the primitives' lowering).

    Returns:
      ``(N, *out, C_out)`` in ``out_dtype``.

    Raises:
      ValueError: bad ranks, groups, stride, dilation, padding, activation or epilogue shapes.
      TypeError: non-floating inputs; non-int arguments; ``block`` not a :class:`ConvBlocks`.
      NotImplementedError: shapes or dtypes the compiled kernels do not cover (non-power-of-two
        Triton blocks, TPU blocks off the (8, 128) tiling, float64 outside interpret mode, no
        GPU/TPU with ``interpret=False``).

    Example:
      >>> x = jnp.arange(1.0, 5.0).reshape(1, 4, 1)      # [1, 2, 3, 4]
      >>> w = jnp.ones((2, 1, 1))
      >>> pallas_conv(x, w, bias=jnp.array([-4.0]), activation="relu")[0, :, 0]
      Array([0., 1., 3.], dtype=float32)

    References:
      Chetlur et al., "cuDNN: Efficient Primitives for Deep Learning", 2014,
      https://arxiv.org/abs/1410.0759 (implicit GEMM); Tillet, Kung and Cox, "Triton", 2019.
    """
    op = "pallas_conv"
    geo = conv_geometry(x, w, stride, padding, dilation, groups, op)
    _checks.check_choice(activation, ACTIVATIONS, "activation", op)
    x = jnp.asarray(x)
    out_dtype = x.dtype if out_dtype is None else _checks.check_dtype(out_dtype, "out_dtype", op)
    _checks.check_real(negative_slope, "negative_slope", op, finite=True)
    _check_batch(x.shape[0], op)
    for name, v in (("bias", bias), ("scale", scale), ("shift", shift)):
        if v is not None:
            _checks.check_floating(v, name, op)
            if jnp.shape(v) != (geo.c_out,):
                raise ValueError(f"{op}: {name} must have shape ({geo.c_out},), got {jnp.shape(v)}")
    if residual is not None:
        _checks.check_floating(residual, "residual", op)
        want = geo.y_shape(x.shape[0])
        if tuple(jnp.shape(residual)) != want:
            raise ValueError(
                f"{op}: residual must have the output shape {want}, got {jnp.shape(residual)}"
            )
    w = jnp.asarray(w, x.dtype)
    options = _options(interpret, block, op)
    _plan_for(geo, x.dtype, options)  # the kernels' NotImplementedError, raised here
    _check_out_dtype(out_dtype, options)
    epilogue = primitives.Epilogue(
        activation=activation,
        negative_slope=float(negative_slope),
        out_dtype=None if out_dtype == x.dtype else out_dtype.name,
    )
    return primitives.conv(
        x,
        w,
        geo,
        impl="pallas",
        options=options,
        bias=bias,
        scale=scale,
        shift=shift,
        residual=residual,
        epilogue=epilogue,
    )[0]


def pallas_conv_input_grad(
    dy, w, input_shape, *, stride=1, padding=0, dilation=1, groups=1, block=None, interpret=None
):
    r"""The input gradient of :func:`pallas_conv` (without epilogue), by the forward kernel.

    .. math::
        dx = \operatorname{conv}\big(\operatorname{pad}_{d(k-1)-p}(\operatorname{dilate}_s(dy)),
            \ \operatorname{flip}(w)^{\top}\big)

    the stride-1 convolution of the output gradient, dilated by the stride (``s - 1`` zeros
    between pixels) and padded, with the kernel flipped in space and its input and output
    channels swapped within each group: a transposed convolution, run by the forward kernel.
    Differentiable at every order (a ``dlref_conv_transpose`` primitive).

    Matches ``jax.vjp`` of ``lax.conv_general_dilated`` with respect to its input.

    Args:
      dy: the output cotangent ``(N, *out, C_out)``.
      w: the kernel ``(*kernel, C_in // groups, C_out)``.
      input_shape: the forward input's shape ``(N, *spatial, C_in)``.
      stride: as :func:`pallas_conv`.
      padding: as :func:`pallas_conv`.
      dilation: as :func:`pallas_conv`.
      groups: as :func:`pallas_conv`.
      block: as :func:`pallas_conv` (used for the transposed convolution).
      interpret: as :func:`pallas_conv`.

    Returns:
      ``dx`` of shape ``input_shape`` in ``dy``'s dtype.

    Raises:
      ValueError: bad arguments (as :func:`pallas_conv`), or ``dy`` not of the output shape.
      TypeError: non-floating inputs; non-int arguments; a bad ``block``.
      NotImplementedError: as :func:`pallas_conv`.

    Example:
      >>> dx = pallas_conv_input_grad(jnp.ones((1, 3, 1)), jnp.ones((2, 1, 1)), (1, 4, 1))
      >>> dx[0, :, 0]
      Array([1., 2., 2., 1.], dtype=float32)
    """
    op = "pallas_conv_input_grad"
    geo = input_grad_geometry(dy, w, input_shape, stride, padding, dilation, groups, op)
    return _run_gradient(primitives.conv_transpose, dy, w, geo, block, interpret, op)


def pallas_conv_weight_grad(
    x, dy, kernel_size, *, stride=1, padding=0, dilation=1, groups=1, block=None, interpret=None
):
    r"""The weight gradient of :func:`pallas_conv` (without epilogue), by a Pallas reduction.

    .. math::
        dw[t, c, j] = \sum_{n, o} x_{pad}[n,\ o \cdot s + t \cdot d,\ c]\; dy[n, o, j]

    A grid over (split, tap, channel block): each program sums ``x``'s shifted window times
    ``dy`` over its share of the ``N × M``-tiles into a partial sum; the partial sums are added
    afterwards. Differentiable at every order (a ``dlref_conv_weight_grad`` primitive).

    Matches ``jax.vjp`` of ``lax.conv_general_dilated`` with respect to its kernel.

    Args:
      x: the forward input ``(N, *spatial, C_in)``.
      dy: the output cotangent ``(N, *out, C_out)``.
      kernel_size: the kernel's spatial size, an int or one per spatial dimension.
      stride: as :func:`pallas_conv`.
      padding: as :func:`pallas_conv`.
      dilation: as :func:`pallas_conv`.
      groups: as :func:`pallas_conv`.
      block: as :func:`pallas_conv`.
      interpret: as :func:`pallas_conv`.

    Returns:
      ``dw`` of shape ``(*kernel_size, C_in // groups, C_out)`` in ``x``'s dtype.

    Raises:
      ValueError: bad arguments (as :func:`pallas_conv`), or ``dy`` not of the output shape.
      TypeError: non-floating inputs; non-int arguments; a bad ``block``.
      NotImplementedError: as :func:`pallas_conv`.

    Example:
      >>> x = jnp.arange(1.0, 5.0).reshape(1, 4, 1)
      >>> pallas_conv_weight_grad(x, jnp.ones((1, 3, 1)), 2)[:, 0, 0]    # 1+2+3, 2+3+4
      Array([6., 9.], dtype=float32)
    """
    op = "pallas_conv_weight_grad"
    geo = weight_grad_geometry(x, dy, kernel_size, stride, padding, dilation, groups, op)
    return _run_gradient(primitives.weight_grad, x, dy, geo, block, interpret, op)


def _run_gradient(primitive, a, b, geo, block, interpret, op):
    """Bind a gradient ``primitive`` to the Pallas path, ``b`` cast to ``a``'s dtype.

    The plan is made first, so that the kernels' NotImplementedError is raised here.
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b, a.dtype)
    options = _options(interpret, block, op)
    _plan_for(geo, a.dtype, options)
    return primitive(a, b, geo, impl="pallas", options=options)


# ---------------------------------------------------------------------------------------------
# Plain-jnp reference of the epilogue (what the fused kernel computes after the conv), written
# independently of the kernel's helpers so that it can catch a bug in them.


def epilogue_reference(
    conv,
    *,
    bias=None,
    scale=None,
    shift=None,
    residual=None,
    activation="none",
    negative_slope=0.01,
):
    r"""``act((conv + bias) · scale + shift + residual)`` in plain jnp (the unfused graph).

    .. math:: y = \operatorname{act}\big((c + b)\,\gamma + \beta + r\big)

    Matches ``jax.nn.relu`` / ``jax.nn.leaky_relu`` / ``jax.nn.sigmoid`` / ``jnp.tanh`` after
    the affine part; written without the kernel's helpers (sigmoid as ``(1 + tanh(z/2))/2``).

    Args:
      conv: the convolution's output.
      bias: optional ``(C_out,)``.
      scale: optional ``(C_out,)``.
      shift: optional ``(C_out,)``.
      residual: optional, the output's shape.
      activation: one of ``"none"``, ``"relu"``, ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"``.
      negative_slope: ``leaky_relu``'s slope.

    Returns:
      The epilogue's output, ``conv``'s shape.

    Raises:
      ValueError: an unknown activation.

    Example:
      >>> epilogue_reference(jnp.array([-1.0, 2.0]), bias=jnp.array(1.0), activation="relu")
      Array([0., 3.], dtype=float32)
    """
    _checks.check_choice(activation, ACTIVATIONS, "activation", "epilogue_reference")
    z = conv
    if bias is not None:
        z = z + bias
    if scale is not None:
        z = z * scale
    if shift is not None:
        z = z + shift
    if residual is not None:
        z = z + residual
    if activation == "relu":
        return jnp.where(z > 0, z, jnp.zeros_like(z))
    if activation == "leaky_relu":
        return jnp.where(z < 0, negative_slope * z, z)
    if activation == "sigmoid":
        return 0.5 * (1.0 + jnp.tanh(0.5 * z))
    if activation == "tanh":
        return jnp.tanh(z)
    return z
