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
Pallas' interpret mode. Layout follows jax's ``pallas/ops/gpu/layer_norm.py``: kernels, the
``pallas_call`` wrappers with their block heuristics, the ``custom_vjp`` wiring, and a plain
jnp reference of the epilogue at the bottom.

This module uses ``dlref._checks`` and ``dlref.shapes`` only (never ``dlref.convolution``).
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
from dlref.kernels.im2col import ConvGeometry, conv_geometry

__all__ = [
    "ACTIVATIONS", "LOOP_ORDERS", "PATHS", "ConvBlocks", "choose_blocks", "is_gemm_geometry",
    "pallas_conv", "poison_outputs",
]  # fmt: skip

ACTIVATIONS = ("none", "relu", "leaky_relu", "sigmoid", "tanh")
_SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


PATHS = ("implicit", "gemm", "small_cin")
LOOP_ORDERS = ("tap_major", "channel_major")


@dataclasses.dataclass(frozen=True)
class ConvBlocks:
    """Tile sizes, launch settings and kernel path of the Pallas convolution kernels.

    Attributes:
      block_m: output pixels per tile (rows of the implicit GEMM).
      block_n: output channels per tile (per group).
      block_k: input channels per reduction step (per group).
      num_warps: Triton warps per program (GPU only).
      num_stages: Triton software-pipelining stages (GPU only).
      wgrad_splits: how many partial sums the weight-gradient reduction over ``M`` is split
        into (each a parallel grid row; summed afterwards). ``0`` picks one automatically.
      path: ``"implicit"`` (the implicit GEMM over taps), ``"gemm"`` (1×1, stride 1, no
        padding, one group: a plain ``(N·H·W, C_in) @ (C_in, C_out)`` matmul over the
        flattened pixels) or ``"small_cin"`` (one group: the stride phases are moved into the
        channels, space-to-depth, so a strided conv with few input channels becomes a
        stride-1 conv with ``prod(stride)×`` the channels and fewer taps; see ``fold_kw``).
      loop_order: reduction order of the implicit path: ``"tap_major"`` (taps outer, channel
        blocks inner) or ``"channel_major"``.
      fold_kw: ``small_cin`` only: also fold the last spatial dim's taps into the channels
        (a ``k_w``-fold copy of the small input) so each reduction step is deeper.

    Raises:
      ValueError: non-positive sizes, negative ``wgrad_splits``, unknown ``path`` or
        ``loop_order``, a non-bool ``fold_kw``.
    """

    block_m: int = 64
    block_n: int = 64
    block_k: int = 32
    num_warps: int = 4
    num_stages: int = 2
    wgrad_splits: int = 0
    path: str = "implicit"
    loop_order: str = "tap_major"
    fold_kw: bool = False

    def __post_init__(self):
        for name in ("block_m", "block_n", "block_k", "num_warps", "num_stages"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"ConvBlocks: {name} must be a positive int, got {v!r}")
        v = self.wgrad_splits
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"ConvBlocks: wgrad_splits must be an int >= 0, got {v!r}")
        if self.path not in PATHS:
            raise ValueError(f"ConvBlocks: path must be one of {PATHS}, got {self.path!r}")
        if self.loop_order not in LOOP_ORDERS:
            raise ValueError(
                f"ConvBlocks: loop_order must be one of {LOOP_ORDERS}, got {self.loop_order!r}"
            )
        if not isinstance(self.fold_kw, bool):
            raise ValueError(f"ConvBlocks: fold_kw must be a bool, got {self.fold_kw!r}")


def _next_pow2(v: int) -> int:
    return 1 << max(0, (int(v) - 1).bit_length())


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def is_gemm_geometry(geo: ConvGeometry) -> bool:
    """Whether a convolution is a plain matmul: 1×1 kernel, stride 1, no padding, one group."""
    return (
        all(k == 1 for k in geo.kernel)
        and all(s == 1 for s in geo.stride)
        and all(p == (0, 0) for p in geo.padding)
        and geo.groups == 1
    )


def _s2d_taps(geo: ConvGeometry) -> tuple[int, ...]:
    """Taps per dim after space-to-depth: ``A_i = ⌊(k_i - 1)·d_i / s_i⌋ + 1``."""
    return tuple(
        (k - 1) * d // s + 1 for k, d, s in zip(geo.kernel, geo.dilation, geo.stride, strict=True)
    )


def _small_cin_channels(geo: ConvGeometry, fold_kw: bool) -> int:
    """Input channels of the ``small_cin`` path's stride-1 conv."""
    c = geo.c_in * math.prod(geo.stride)
    return c * _s2d_taps(geo)[-1] if fold_kw else c


def _heuristic_blocks(cin_g, cout_g, m, dtype, backend, geometry) -> ConvBlocks:
    narrow = jnp.dtype(dtype).itemsize <= 2
    if backend == "tpu":
        bm = min(256 if narrow else 128, _round_up(m, 8))
        return ConvBlocks(block_m=bm, block_n=128, block_k=128, num_warps=4, num_stages=1)
    path, fold = "implicit", False
    if geometry is not None and is_gemm_geometry(geometry):
        path = "gemm"
        m = 1 << 30  # the tiles run over the whole batch's pixels: never a short M
    elif geometry is not None and geometry.groups == 1 and cin_g <= 4:
        # Space-to-depth (and, where it removes channel padding, folding the last dim's taps):
        # e.g. the ResNet stem 7×7/2, C_in 3 -> 4×4 taps of 12 channels instead of 7×7 of 3,
        # each padded to 16 (256 instead of 784 reduction rows per output).
        a_w = _s2d_taps(geometry)[-1]
        c = _small_cin_channels(geometry, False)
        kpad = lambda v: _round_up(v, max(16, min(64, _next_pow2(v))))  # noqa: E731
        fold = a_w * kpad(c) > kpad(a_w * c)
        if math.prod(geometry.stride) > 1 or fold:
            path = "small_cin"
            cin_g = _small_cin_channels(geometry, fold)
    bk = max(16, min(64 if narrow else 32, _next_pow2(cin_g)))
    bn = max(16, min(128, _next_pow2(cout_g)))
    bm = max(16, min(128 if narrow else 64, _next_pow2(m)))
    warps = 8 if bm * bn >= 128 * 128 else 4
    return ConvBlocks(block_m=bm, block_n=bn, block_k=bk, num_warps=warps, num_stages=3,
                      path=path, fold_kw=fold)  # fmt: skip


def choose_blocks(
    c_in_per_group: int, c_out_per_group: int, m: int, dtype: Any, *, backend: str = "gpu",
    geometry: ConvGeometry | None = None, device_kind: str | None = None, table: Any = None,
) -> ConvBlocks:  # fmt: skip
    """The tile sizes and kernel path for one convolution: the tuning table, else a heuristic.

    With ``geometry`` on the GPU backend, the persisted table (:mod:`dlref.kernels.tuning`,
    keyed by device kind, the batch-free shape signature and dtype) is consulted first.
    Otherwise (or on a miss) the heuristic: power-of-two blocks of at least 16 (``tl.dot``'s
    minimum), ``block_k`` up to 64 (32 for float32, whose tiles are twice as large),
    ``block_n`` up to 128, and ``block_m`` 128 for 16-bit inputs (64 for float32) unless the
    output is smaller; the ``"gemm"`` path for 1×1 stride-1 unpadded single-group convs, the
    ``"small_cin"`` path for single-group convs with at most 4 input channels that are
    strided (or whose taps fold into fewer padded channels). TPU: block dims that respect the
    (8, 128) tiling: channel blocks of 128, ``block_m`` a multiple of 8.

    Args:
      c_in_per_group: ``C_in / groups``.
      c_out_per_group: ``C_out / groups``.
      m: output pixels per image in the kernel's "wide" layout.
      dtype: input dtype.
      backend: ``"gpu"`` (also used by the generic interpreter) or ``"tpu"``.
      geometry: the convolution's ``ConvGeometry``; enables the table and the special paths.
      device_kind: the table's device key; ``None`` means the target device (an abstract
        device set with ``jax.sharding.use_abstract_mesh``, else ``jax.devices()[0]``).
      table: a :class:`dlref.kernels.tuning.TuningTable`; ``None`` means the default one.

    Returns:
      A :class:`ConvBlocks`.
    """
    if backend == "gpu" and geometry is not None:
        from dlref.kernels import tuning

        kind = tuning.target_device_kind() if device_kind is None else device_kind
        hit = (tuning.default_table() if table is None else table).lookup(
            kind, tuning.conv_signature(geometry), dtype
        )
        if hit is not None:
            return hit
    return _heuristic_blocks(c_in_per_group, c_out_per_group, m, dtype, backend, geometry)


# ---------------------------------------------------------------------------------------------
# Static plan: the phase-split, flattened layout of one convolution.


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


def _target_platform() -> str:
    """The platform kernels are built for: an abstract GPU/TPU device set with
    ``jax.sharding.use_abstract_mesh`` (ahead-of-time lowering from a CPU host), else the
    default backend."""
    device = jax.sharding.get_abstract_mesh().abstract_device
    if device is not None:
        if device.platform in ("gpu", "cuda", "rocm"):
            return "gpu"
        if device.platform == "tpu":
            return "tpu"
    return jax.default_backend()


def _resolve_backend(interpret: Any) -> tuple[str, Any]:
    """``interpret=None``: compiled on GPU/TPU, interpreted on the CPU."""
    platform = _target_platform()
    if interpret is None:
        if platform in ("gpu", "tpu"):
            return platform, False
        return "interpret", True
    if interpret is False:
        if platform not in ("gpu", "tpu"):
            raise NotImplementedError(
                f"pallas_conv: compiled kernels need a GPU or TPU, the default backend is "
                f"{platform!r}; pass interpret=True"
            )
        return platform, False
    if interpret is True:
        return "interpret", True
    # pltpu.InterpretParams (the TPU interpreter): the TPU variant, interpreted.
    return "tpu", interpret


def _wide_m(geo: ConvGeometry) -> int:
    """Output pixels per image in the kernel's "wide" layout (garbage columns included)."""
    padded = [n + lo + hi for n, (lo, hi) in zip(geo.in_sizes, geo.padding, strict=True)]
    q_sizes = [-(-p // s) for p, s in zip(padded, geo.stride, strict=True)]
    return geo.out_sizes[0] * math.prod(q_sizes[1:])


def _resolve_blocks(geo: ConvGeometry, dtype, block, backend: str) -> ConvBlocks:
    if block is None:
        g = geo.groups
        block = choose_blocks(
            geo.c_in // g, geo.c_out // g, _wide_m(geo), dtype,
            backend="tpu" if backend == "tpu" else "gpu", geometry=geo,
        )  # fmt: skip
    if not isinstance(block, ConvBlocks):
        raise TypeError(f"pallas_conv: block must be a ConvBlocks, got {type(block).__name__}")
    return block


def _space_to_depth(x: jax.Array, w: jax.Array, geo: ConvGeometry, fold_kw: bool):
    """The ``small_cin`` transform: an equivalent stride-1, unpadded conv with more channels.

    Strided: pad so each dim is ``Q_i·s_i`` with ``Q_i = out_i + A_i - 1`` (``A_i`` the taps
    after the move, :func:`_s2d_taps`), move the stride phases into the channels
    (``x'[n, q, (r, c)] = x_pad[n, q·s + r, c]``) and scatter each tap ``t`` of the kernel to
    ``w'[a, (r, c)]`` with ``t·d = a·s + r`` (zeros elsewhere): ``x'`` at ``q = o + a``, phase
    ``r``, is ``x_pad[o·s + t·d]``, so ``conv(x', w')[o] = conv(x, w)[o]`` exactly. With
    ``fold_kw`` the last dim's taps are stacked into the channels as well (``k_w`` shifted
    copies). Done in XLA outside the kernel's ``custom_vjp``: autodiff transposes it.
    """
    nd = geo.nd
    strided = math.prod(geo.stride) > 1
    taps = _s2d_taps(geo) if strided else geo.kernel
    dil = (1,) * nd if strided else geo.dilation
    step = geo.stride if strided else (1,) * nd
    cfg = [(0, 0, 0)]
    q_sizes = []
    for i in range(nd):
        q = geo.out_sizes[i] + (taps[i] - 1) * dil[i]
        q_sizes.append(q)
        lo = geo.padding[i][0]
        cfg.append((lo, q * step[i] - geo.in_sizes[i] - lo, 0))
    cfg.append((0, 0, 0))
    xp = lax.pad(x, jnp.zeros((), x.dtype), cfg)
    n, c = x.shape[0], geo.c_in
    if strided:
        split = [n]
        for q, st in zip(q_sizes, step, strict=True):
            split += [q, st]
        perm = [0] + [1 + 2 * i for i in range(nd)] + [2 + 2 * i for i in range(nd)]
        xp = xp.reshape(*split, c).transpose(*perm, 2 * nd + 1)
        xp = xp.reshape(n, *q_sizes, math.prod(step) * c)
        grids = np.meshgrid(*[np.arange(k) for k in geo.kernel], indexing="ij")
        offs = [t * d for t, d in zip(grids, geo.dilation, strict=True)]
        a_idx = tuple(o // st for o, st in zip(offs, step, strict=True))
        r_idx = tuple(o % st for o, st in zip(offs, step, strict=True))
        wz = jnp.zeros((*taps, *step, c, geo.c_out), w.dtype)
        w = wz.at[a_idx + r_idx].set(w).reshape(*taps, math.prod(step) * c, geo.c_out)
    c = math.prod(step) * c
    if fold_kw:
        a_w, o_w, d_w = taps[-1], geo.out_sizes[-1], dil[-1]
        xp = jnp.concatenate(
            [lax.slice_in_dim(xp, a * d_w, a * d_w + o_w, axis=nd) for a in range(a_w)], -1
        )
        w = w.reshape(*taps[:-1], 1, a_w * c, geo.c_out)
        taps, dil, c = (*taps[:-1], 1), (*dil[:-1], 1), a_w * c
    geo2 = ConvGeometry(
        tuple(xp.shape[1:-1]), tuple(taps), (1,) * nd, ((0, 0),) * nd, tuple(dil),
        geo.out_sizes, 1, c, geo.c_out,
    )  # fmt: skip
    return xp, w, geo2


def _dispatch(x: jax.Array, w: jax.Array, geo: ConvGeometry, block, interpret):
    """Pick the blocks and path, apply the ``small_cin`` transform; ``(x, w, plan)``."""
    backend, _ = _resolve_backend(interpret)
    blocks = _resolve_blocks(geo, x.dtype, block, backend)
    if blocks.path == "small_cin":
        if geo.groups != 1:
            raise NotImplementedError(
                f"pallas_conv: the small_cin path needs groups=1, got groups={geo.groups}"
            )
        x, w, geo = _space_to_depth(x, w, geo, blocks.fold_kw)
        blocks = dataclasses.replace(blocks, path="implicit", fold_kw=False)
    return x, w, _make_plan(geo, x.dtype, blocks, interpret)


def _make_plan(geo: ConvGeometry, dtype, block, interpret) -> _Plan:
    backend, interp = _resolve_backend(interpret)
    g = geo.groups
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    depthwise = cin_g == 1 and g > 1
    padded = [n + lo + hi for n, (lo, hi) in zip(geo.in_sizes, geo.padding, strict=True)]
    q_sizes = tuple(-(-p // s) for p, s in zip(padded, geo.stride, strict=True))
    q_strides = tuple(math.prod(q_sizes[i + 1 :]) for i in range(geo.nd))
    m_wide = geo.out_sizes[0] * q_strides[0]
    block = _resolve_blocks(geo, dtype, block, backend)
    if block.path == "gemm" and not is_gemm_geometry(geo):
        raise NotImplementedError(
            f"pallas_conv: the gemm path needs a 1x1 kernel, stride 1, no padding and groups=1, "
            f"got kernel={geo.kernel}, stride={geo.stride}, padding={geo.padding}, "
            f"groups={geo.groups}"
        )
    if block.path == "small_cin":  # already applied by _dispatch; here the implicit kernel
        block = dataclasses.replace(block, path="implicit", fold_kw=False)
    bm, bn, bk = block.block_m, block.block_n, block.block_k
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
        cin_p = cout_p = _round_up(geo.c_out, bn)
    else:
        cin_p, cout_p = _round_up(cin_g, bk), _round_up(cout_g, bn)
    m_pad = _round_up(m_wide, bm)
    plan = _Plan(
        geo, depthwise, math.prod(geo.stride), q_sizes, q_strides, m_wide, m_pad, 0,
        cin_g, cout_g, cin_p, cout_p, block, backend, interp,
    )  # fmt: skip
    length = max(math.prod(q_sizes), m_pad + plan.max_offset)
    return dataclasses.replace(plan, length=_round_up(length, 8))


def _check_dtype(dtype, plan: _Plan) -> None:
    dtype = jnp.dtype(dtype)
    if plan.backend != "interpret" and dtype not in _SUPPORTED_DTYPES:
        raise NotImplementedError(
            f"pallas_conv: compiled kernels support float32, bfloat16 and float16, got {dtype}"
        )


# ---------------------------------------------------------------------------------------------
# Layout transforms (input-sized, never patch-sized).


def _phase_split(x: jax.Array, plan: _Plan) -> jax.Array:
    """``(N, *spatial, C)`` -> ``(N, phases, length, C)``: padded, phase-split, flattened."""
    geo, nd = plan.geo, plan.geo.nd
    n, c = x.shape[0], x.shape[-1]
    cfg = [(0, 0, 0)]
    for (lo, _hi), size, q, s in zip(geo.padding, geo.in_sizes, plan.q_sizes, geo.stride,
                                    strict=True):  # fmt: skip
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
# Kernels (bodies on refs).


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


def _conv_fwd_kernel(
    x_ref, w_ref, *rest, plan: _Plan, has: tuple[bool, ...], activation: str,
    negative_slope: float, emit_pre: bool,
):  # fmt: skip
    """One (image, pixel tile, channel tile): loop over taps × channel blocks, then epilogue."""
    n_vec = sum(has[:3])
    vec_refs = rest[:n_vec]
    res_ref = rest[n_vec] if has[3] else None
    out_refs = rest[n_vec + has[3] :]
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
    _epilogue(acc, vec_refs, res_ref, out_refs, has, activation, negative_slope, emit_pre)


def _epilogue(acc, vec_refs, res_ref, out_refs, has, activation, negative_slope, emit_pre):
    """Fused epilogue on the float32 tile: z = (acc + bias)·scale + shift + residual; act(z)."""
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
    out_refs[0][...] = _activate(acc, activation, negative_slope).astype(out_refs[0].dtype)
    if emit_pre:
        out_refs[1][...] = u.astype(out_refs[1].dtype)


def _gemm_fwd_kernel(
    x_ref, w_ref, *rest, plan: _Plan, has: tuple[bool, ...], activation: str,
    negative_slope: float, emit_pre: bool,
):  # fmt: skip
    """The ``gemm`` path: one ``(block_m, block_n)`` tile of ``X (M, C_in) @ W (C_in, C_out)``
    over the flattened pixels of the whole batch, a loop over ``block_k`` channel steps, then
    the same epilogue."""
    n_vec = sum(has[:3])
    vec_refs = rest[:n_vec]
    res_ref = rest[n_vec] if has[3] else None
    out_refs = rest[n_vec + has[3] :]
    bk = plan.blocks.block_k
    acc_t = _checks.accumulation_dtype(x_ref.dtype)

    def body(kb, acc):
        xs = x_ref[:, pl.ds(kb * bk, bk)]
        ws = w_ref[pl.ds(kb * bk, bk), :]
        return acc + jnp.dot(xs, ws, preferred_element_type=acc_t)

    shape = (plan.blocks.block_m, plan.blocks.block_n)
    acc = lax.fori_loop(0, plan.cin_p // bk, body, jnp.zeros(shape, acc_t))
    _epilogue(acc, vec_refs, res_ref, out_refs, has, activation, negative_slope, emit_pre)


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
    if _POISON.get():
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


def _gemm_forward_call(x, w, bias, scale, shift, residual, plan, activation, slope, out_dtype,
                       emit_pre):  # fmt: skip
    """The ``gemm`` path's forward: the batch's pixels flattened into one ``M`` axis."""
    geo, blocks = plan.geo, plan.blocks
    bm, bn = blocks.block_m, blocks.block_n
    n = x.shape[0]
    m = n * math.prod(geo.in_sizes)
    m_pad = _round_up(m, bm)
    xm = jnp.pad(x.reshape(m, geo.c_in), ((0, m_pad - m), (0, plan.cin_p - geo.c_in)))
    wm = w.reshape(geo.c_in, geo.c_out)
    wm = jnp.pad(wm, ((0, plan.cin_p - geo.c_in), (0, plan.cout_p - geo.c_out)))
    grid = (m_pad // bm, plan.cout_p // bn)
    in_specs = [pl.BlockSpec((bm, plan.cin_p), lambda i, j: (i, 0)),
                pl.BlockSpec((plan.cin_p, bn), lambda i, j: (0, j))]  # fmt: skip
    args = [xm, wm]
    has = tuple(v is not None for v in (bias, scale, shift, residual))
    for v in (bias, scale, shift):
        if v is not None:
            args.append(_pad_out_channels(v.reshape(1, geo.c_out), plan))
            in_specs.append(pl.BlockSpec((1, bn), lambda i, j: (0, j)))
    if residual is not None:
        r = _pad_out_channels(residual.reshape(m, geo.c_out), plan)
        args.append(jnp.pad(r, ((0, m_pad - m), (0, 0))))
        in_specs.append(pl.BlockSpec((bm, bn), lambda i, j: (i, j)))
    spec = pl.BlockSpec((bm, bn), lambda i, j: (i, j))
    out_shape = [jax.ShapeDtypeStruct((m_pad, plan.cout_p), out_dtype)] * (1 + emit_pre)
    kernel = functools.partial(
        _gemm_fwd_kernel, plan=plan, has=has, activation=activation,
        negative_slope=slope, emit_pre=emit_pre,
    )  # fmt: skip
    outs = _call(kernel, args, out_shape=out_shape, grid=grid, in_specs=in_specs,
                 out_specs=[spec] * len(out_shape), plan=plan, name="dlref_conv_gemm")  # fmt: skip
    return [o[:m, : geo.c_out].reshape(n, *geo.out_sizes, geo.c_out) for o in outs]


def _forward_call(x, w, bias, scale, shift, residual, plan, activation, slope, out_dtype,
                  emit_pre):  # fmt: skip
    """Run the forward kernel; returns ``y`` (and the pre-scale ``u`` if ``emit_pre``)."""
    if plan.blocks.path == "gemm":
        return _gemm_forward_call(x, w, bias, scale, shift, residual, plan, activation, slope,
                                  out_dtype, emit_pre)  # fmt: skip
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
    in_specs = [pl.BlockSpec((None, plan.phases, plan.length, xk.shape[-1]),
                             lambda b, i, j: (b, 0, 0, 0))]  # fmt: skip
    if plan.depthwise:
        in_specs.append(pl.BlockSpec((geo.taps, bn), lambda b, i, j: (0, j)))
    else:
        in_specs.append(
            pl.BlockSpec(
                (None, geo.taps, plan.cin_p, bn),
                lambda b, i, j: (_div(j, n_nb), 0, 0, _rem(j, n_nb)),
            )
        )
    args = [xk, wk]
    has = tuple(v is not None for v in (bias, scale, shift, residual))
    for v in (bias, scale, shift):
        if v is not None:
            args.append(_pad_out_channels(v.reshape(1, geo.c_out), plan))
            in_specs.append(pl.BlockSpec((1, bn), lambda b, i, j: (0, j)))
    if residual is not None:
        args.append(_to_wide(_pad_out_channels(residual, plan), plan))
        in_specs.append(pl.BlockSpec((None, bm, bn), lambda b, i, j: (b, i, j)))
    out_spec = pl.BlockSpec((None, bm, bn), lambda b, i, j: (b, i, j))
    out_shape = [jax.ShapeDtypeStruct((n, plan.m_pad, cols), out_dtype)]
    out_specs = [out_spec]
    if emit_pre:
        out_shape.append(jax.ShapeDtypeStruct((n, plan.m_pad, cols), out_dtype))
        out_specs.append(out_spec)
    kernel = functools.partial(
        _conv_fwd_kernel, plan=plan, has=has, activation=activation,
        negative_slope=slope, emit_pre=emit_pre,
    )  # fmt: skip
    outs = _call(kernel, args, out_shape=out_shape, grid=grid, in_specs=in_specs,
                 out_specs=out_specs, plan=plan, name="dlref_conv_fwd")  # fmt: skip
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
        m_pad = _round_up(m, bm)
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


def _input_grad(dy, w, geo: ConvGeometry, x_dtype, block, interpret):
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
    dyp = lax.pad(dy.astype(x_dtype), jnp.zeros((), x_dtype), cfg)
    # Flip the taps and swap I/O within each group: (*k, Cg_in, G, Cg_out) -> (*k, Cg_out, G·Cg_in)
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    wt = lax.rev(w, tuple(range(nd))).reshape(*geo.kernel, cin_g, g, cout_g)
    perm = (*range(nd), nd + 2, nd + 1, nd)
    wt = wt.transpose(perm).reshape(*geo.kernel, cout_g, g * cin_g)
    geo_t = ConvGeometry(
        tuple(dyp.shape[1:-1]), geo.kernel, (1,) * nd, ((0, 0),) * nd, geo.dilation,
        geo.in_sizes, g, geo.c_out, geo.c_in,
    )  # fmt: skip
    dyp, wt, plan_t = _dispatch(dyp, wt.astype(x_dtype), geo_t, block, interpret)
    (dx,) = _forward_call(dyp, wt, None, None, None, None, plan_t, "none", 0.0, x_dtype, False)
    return dx


# ---------------------------------------------------------------------------------------------
# custom_vjp wiring.


@dataclasses.dataclass(frozen=True)
class _Static:
    plan: _Plan
    activation: str
    negative_slope: float
    out_dtype: Any
    block: Any
    interpret: Any


def _activation_grad(z, activation, slope):
    if activation == "relu":
        return (z > 0).astype(z.dtype)  # relu'(0) = 0
    if activation == "leaky_relu":
        return jnp.where(z >= 0, 1.0, slope).astype(z.dtype)  # leaky'(0) = 1
    if activation == "sigmoid":
        sg = jax.nn.sigmoid(z)
        return sg * (1 - sg)
    if activation == "tanh":
        return 1 - jnp.tanh(z) ** 2
    return jnp.ones_like(z)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _pallas_conv(x, w, bias, scale, shift, residual, st: _Static):
    (y,) = _forward_call(x, w, bias, scale, shift, residual, st.plan, st.activation,
                         st.negative_slope, st.out_dtype, False)  # fmt: skip
    return y


def _needs_pre(bias, scale, shift, residual, st):
    return scale is not None or st.activation != "none"


def _pallas_conv_fwd(x, w, bias, scale, shift, residual, st):
    emit = _needs_pre(bias, scale, shift, residual, st)
    outs = _forward_call(x, w, bias, scale, shift, residual, st.plan, st.activation,
                         st.negative_slope, st.out_dtype, emit)  # fmt: skip
    u = outs[1] if emit else None
    return outs[0], (x, w, bias, scale, shift, residual, u)


def _pallas_conv_bwd(st, res, g):
    x, w, bias, scale, shift, residual, u = res
    geo = st.plan.geo
    acc_t = _checks.accumulation_dtype(x.dtype)
    g = g.astype(acc_t)
    spatial = tuple(range(g.ndim - 1))
    # Epilogue backward: z = u * scale + shift + residual, u = conv + bias, y = act(z).
    if st.activation != "none":
        z = u.astype(acc_t)
        if scale is not None:
            z = z * scale.astype(acc_t)
        if shift is not None:
            z = z + shift.astype(acc_t)
        if residual is not None:
            z = z + residual.astype(acc_t)
        g = g * _activation_grad(z, st.activation, st.negative_slope)
    d_residual = None if residual is None else g.astype(residual.dtype)
    d_shift = None if shift is None else g.sum(spatial).astype(shift.dtype)
    d_scale = None
    if scale is not None:
        d_scale = (g * u.astype(acc_t)).sum(spatial).astype(scale.dtype)
        g = g * scale.astype(acc_t)
    d_bias = None if bias is None else g.sum(spatial).astype(bias.dtype)
    dconv = g.astype(x.dtype)
    dx = _input_grad(dconv, w, geo, x.dtype, st.block, st.interpret)
    dw = _wgrad_call(x, dconv, st.plan, w.dtype)
    return dx, dw, d_bias, d_scale, d_shift, d_residual


_pallas_conv.defvjp(_pallas_conv_fwd, _pallas_conv_bwd)


def pallas_conv(
    x, w, *, stride=1, padding=0, dilation=1, groups=1, bias=None, scale=None, shift=None,
    residual=None, activation="none", negative_slope=0.01, out_dtype=None, block=None,
    interpret=None,
):  # fmt: skip
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

    Kernel paths (:class:`ConvBlocks`, from :func:`choose_blocks`: the tuning table, else a
    heuristic): ``"implicit"`` as above; ``"gemm"`` for 1×1 stride-1 unpadded convs, a plain
    tiled matmul over the batch's flattened pixels; ``"small_cin"`` for few input channels
    (the stem), which first moves the stride phases into the channels (space-to-depth) so
    the kernel runs an equivalent stride-1 conv with fewer, deeper taps.

    The backward pass (``custom_vjp``) differentiates the epilogue (relu'(0) = 0,
    leaky_relu'(0) = 1), then runs two Pallas kernels: the input gradient as the forward
    kernel applied to the dilated, padded output gradient with the flipped kernel, and the
    weight gradient as a reduction over the ``N·H_out·W_out`` pixels, split into independent
    partial sums (a parallel grid axis) that are added afterwards. It is first-order only:
    jax 0.11 cannot differentiate a ``pallas_call``, so second derivatives (``jax.hessian``,
    ``check_grads(order=2)``) fail inside Pallas; use ``impl="im2col"`` or ``"xla"`` for them.

    Matches ``lax.conv_general_dilated`` (NHWC / HWIO) followed by the same epilogue in jnp,
    values and gradients, to float32 accumulation.

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
      block: a :class:`ConvBlocks`; ``None`` picks one with :func:`choose_blocks`.
      interpret: ``None`` compiles on a GPU (Triton) or TPU (Mosaic) and interprets on the
        CPU; ``True`` forces the generic interpreter; a ``pltpu.InterpretParams`` runs the
        TPU variant in the TPU interpreter.

    Returns:
      ``(N, *out, C_out)`` in ``out_dtype``.

    Raises:
      ValueError: bad ranks, groups, stride, dilation, padding, activation or epilogue shapes.
      TypeError: non-floating inputs; ``block`` not a :class:`ConvBlocks`.
      NotImplementedError: shapes or dtypes the compiled kernels do not cover (non-power-of-two
        Triton blocks, TPU blocks off the (8, 128) tiling, float64 outside interpret mode, no
        GPU/TPU with ``interpret=False``); ``dlref.conv(impl="auto")`` then falls back to XLA.

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
    out_dtype = jnp.dtype(x.dtype if out_dtype is None else out_dtype)
    for name, v in (("bias", bias), ("scale", scale), ("shift", shift)):
        if v is not None:
            _checks.check_floating(v, name, op)
            if jnp.shape(v) != (geo.c_out,):
                raise ValueError(f"{op}: {name} must have shape ({geo.c_out},), got {jnp.shape(v)}")
    if residual is not None:
        _checks.check_floating(residual, "residual", op)
        want = (x.shape[0], *geo.out_sizes, geo.c_out)
        if tuple(jnp.shape(residual)) != want:
            raise ValueError(
                f"{op}: residual must have the output shape {want}, got {jnp.shape(residual)}"
            )
    if x.dtype != w.dtype:
        w = w.astype(x.dtype)
    x, w, plan = _dispatch(x, w, geo, block, interpret)
    _check_dtype(x.dtype, plan)
    _check_dtype(out_dtype, plan)
    st = _Static(plan, activation, float(negative_slope), out_dtype, block, interpret)
    return _pallas_conv(x, w, bias, scale, shift, residual, st)


# ---------------------------------------------------------------------------------------------
# Plain-jnp reference of the epilogue (what the fused kernel computes after the conv).


def epilogue_reference(
    conv, *, bias=None, scale=None, shift=None, residual=None, activation="none",
    negative_slope=0.01,
):  # fmt: skip
    """``act((conv + bias) * scale + shift + residual)`` in plain jnp (the unfused graph)."""
    z = conv
    if bias is not None:
        z = z + bias
    if scale is not None:
        z = z * scale
    if shift is not None:
        z = z + shift
    if residual is not None:
        z = z + residual
    return _activate(z, activation, negative_slope)
