"""Static facts of a convolution and the tile sizes of the Pallas kernels that run it.

* :class:`ConvGeometry` and :func:`conv_geometry`: the validated, batch-free description of one
  channels-last convolution, shared by every implementation (``dlref.conv`` validates through
  it too, so one fault raises one exception type with one message everywhere).
* :class:`ConvBlocks`, :data:`PATHS`, :data:`LOOP_ORDERS`: the settings of the Pallas kernels.
* :func:`choose_blocks`: a tuning table's entry for the target device, else the heuristic.
* :func:`target_device`: the platform and device kind kernels are built for (an abstract device
  set with ``jax.sharding.use_abstract_mesh`` when lowering from a CPU host, else the default
  device).

This module is the bottom of ``dlref.kernels``: it imports ``dlref._checks`` and ``dlref.shapes``
only; ``tuning`` imports it (never the other way round).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref.shapes import conv_output_size

__all__ = [
    "LOOP_ORDERS",
    "PATHS",
    "ConvBlocks",
    "ConvGeometry",
    "TargetDevice",
    "choose_blocks",
    "conv_geometry",
    "conv_signature",
    "is_gemm_geometry",
    "target_device",
    "wide_m",
]

PATHS = ("implicit", "gemm", "small_cin")
LOOP_ORDERS = ("tap_major", "channel_major")


class ConvGeometry(NamedTuple):
    """Static facts of one channels-last convolution (hashable: a primitive parameter).

    ``x: (N, *in_sizes, c_in)``, ``w: (*kernel, c_in // groups, c_out)``,
    ``y: (N, *out_sizes, c_out)``; ``padding`` is one ``(lo, hi)`` pair per spatial dim.
    The batch size is not part of it: one geometry serves every batch.
    """

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

    def x_shape(self, n: int) -> tuple[int, ...]:
        return (n, *self.in_sizes, self.c_in)

    def w_shape(self) -> tuple[int, ...]:
        return (*self.kernel, self.c_in // self.groups, self.c_out)

    def y_shape(self, n: int) -> tuple[int, ...]:
        return (n, *self.out_sizes, self.c_out)


def conv_geometry(
    x: Any, w: Any, stride: Any, padding: Any, dilation: Any, groups: Any, op: str
) -> ConvGeometry:
    """Validate the static arguments of a channels-last convolution; return its geometry.

    The one validation of ``dlref.conv``, ``im2col_conv`` and ``pallas_conv``: the same fault
    raises the same exception type and message (prefixed with ``op``) everywhere.

    Args:
      x: the input ``(N, *spatial, C_in)`` (an array or a ``jax.ShapeDtypeStruct``).
      w: the kernel ``(*kernel, C_in // groups, C_out)``.
      stride: an int or one per spatial dim.
      padding: any form of :func:`dlref._checks.normalize_padding`.
      dilation: an int or one per spatial dim.
      groups: channel groups (a Python int; ``1.5`` is a ``TypeError``).
      op: the name that starts every message.

    Returns:
      The :class:`ConvGeometry`.

    Raises:
      ValueError: ranks that do not match or are not 3, 4 or 5; channels not divisible by
        ``groups`` or not matching the kernel; bad stride, dilation or padding values; a
        dilated kernel larger than the padded input.
      TypeError: non-floating inputs; non-int groups, stride, dilation or padding.
    """
    if not isinstance(x, jax.ShapeDtypeStruct):
        x = _checks.as_array(x, "x", op)
    if not isinstance(w, jax.ShapeDtypeStruct):
        w = _checks.as_array(w, "w", op)
    w_rank = jnp.ndim(w)
    if w_rank not in (3, 4, 5):
        raise ValueError(
            f"{op}: kernel w must have rank 3, 4 or 5 (1, 2 or 3 spatial dims plus two channel "
            f"dims), got rank {w_rank} with shape {jnp.shape(w)}"
        )
    nd = w_rank - 2
    if jnp.ndim(x) != w_rank:
        raise ValueError(
            f"{op}: input x must have rank {w_rank} (N, {nd} spatial dims, C) to match the "
            f"kernel w of rank {w_rank}, got x of rank {jnp.ndim(x)} with shape {jnp.shape(x)}"
        )
    _checks.check_floating(x, "x", op)
    _checks.check_floating(w, "w", op)
    groups = _checks.check_int(groups, "groups", op, minimum=1)
    c_in, cin_g, c_out = x.shape[-1], w.shape[-2], w.shape[-1]
    if c_in % groups:
        raise ValueError(f"{op}: input channels C_in={c_in} must be divisible by groups={groups}")
    if cin_g * groups != c_in:
        raise ValueError(
            f"{op}: the kernel's input channels w.shape[-2]={cin_g} must equal "
            f"C_in/groups={c_in}/{groups}={c_in // groups} (input/kernel channel mismatch)"
        )
    if c_out % groups:
        raise ValueError(
            f"{op}: output channels C_out={c_out} must be divisible by groups={groups}"
        )
    kernel = tuple(int(k) for k in w.shape[:-2])
    if min(kernel) < 1:
        raise ValueError(f"{op}: the kernel w must have no empty spatial dim, got shape {w.shape}")
    stride = _checks.as_tuple(stride, nd, "stride", op, minimum=1)
    dilation = _checks.as_tuple(dilation, nd, "dilation", op, minimum=1)
    sizes = tuple(int(n) for n in x.shape[1:-1])
    pads = _checks.normalize_padding(
        padding, nd, op, sizes=sizes, window=kernel, stride=stride, dilation=dilation
    )
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    for i, (n, k, d, (lo, hi)) in enumerate(zip(sizes, kernel, dilation, pads, strict=True)):
        if d * (k - 1) + 1 > n + lo + hi:
            raise ValueError(
                f"{op}: the dilated kernel d*(k-1)+1={d * (k - 1) + 1} is larger than the "
                f"padded input n+lo+hi={n}+{lo}+{hi}={n + lo + hi} along spatial dim {i}"
            )
    out = tuple(
        conv_output_size(n, k, s, p, d)
        for n, k, s, p, d in zip(sizes, kernel, stride, pads, dilation, strict=True)
    )
    return ConvGeometry(sizes, kernel, stride, pads, dilation, out, groups, int(c_in), int(c_out))


def is_gemm_geometry(geo: ConvGeometry) -> bool:
    """Whether a convolution is a plain matmul: 1×1 kernel, stride 1, no padding, one group."""
    return (
        all(k == 1 for k in geo.kernel)
        and all(s == 1 for s in geo.stride)
        and all(p == (0, 0) for p in geo.padding)
        and geo.groups == 1
    )


def wide_m(geo: ConvGeometry) -> int:
    """Output pixels per image in the implicit kernel's "wide" layout (garbage columns included):
    ``out_0 · Q_1 ⋯ Q_D`` with ``Q_i = ⌈(n_i + lo_i + hi_i) / s_i⌉``."""
    padded = [n + lo + hi for n, (lo, hi) in zip(geo.in_sizes, geo.padding, strict=True)]
    q_sizes = [-(-p // s) for p, s in zip(padded, geo.stride, strict=True)]
    return geo.out_sizes[0] * math.prod(q_sizes[1:])


# ---------------------------------------------------------------------------------------------
# The target device.


class TargetDevice(NamedTuple):
    """Where kernels are built for: ``platform`` is ``"gpu"``, ``"tpu"`` or the default
    backend's name (``"cpu"``); ``device_kind`` is the tuning table's device key."""

    platform: str
    device_kind: str


def target_device() -> TargetDevice:
    """The device kernels are built for: an abstract device set with
    ``jax.sharding.use_abstract_mesh`` (ahead-of-time lowering from a CPU host), else
    ``jax.devices()[0]``.

    Returns:
      A :class:`TargetDevice`.

    Example:
      >>> target_device().platform in ("cpu", "gpu", "tpu")
      True
    """
    device = jax.sharding.get_abstract_mesh().abstract_device
    if device is not None:
        platform = {"cuda": "gpu", "rocm": "gpu"}.get(device.platform, device.platform)
        return TargetDevice(platform, device.device_kind or platform)
    default = jax.devices()[0]
    return TargetDevice(jax.default_backend(), default.device_kind)


# ---------------------------------------------------------------------------------------------
# Tile sizes.


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


def next_pow2(v: int) -> int:
    return 1 << max(0, (int(v) - 1).bit_length())


def round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def s2d_taps(geo: ConvGeometry) -> tuple[int, ...]:
    """Taps per dim after space-to-depth: ``A_i = ⌊(k_i - 1)·d_i / s_i⌋ + 1``."""
    return tuple(
        (k - 1) * d // s + 1 for k, d, s in zip(geo.kernel, geo.dilation, geo.stride, strict=True)
    )


def small_cin_channels(geo: ConvGeometry, fold_kw: bool) -> int:
    """Input channels of the ``small_cin`` path's stride-1 conv."""
    c = geo.c_in * math.prod(geo.stride)
    return c * s2d_taps(geo)[-1] if fold_kw else c


def _heuristic_blocks(cin_g, cout_g, m, dtype, backend, geometry) -> ConvBlocks:
    narrow = jnp.dtype(dtype).itemsize <= 2
    if backend == "tpu":
        bm = min(256 if narrow else 128, round_up(m, 8))
        return ConvBlocks(block_m=bm, block_n=128, block_k=128, num_warps=4, num_stages=1)
    path, fold = "implicit", False
    if geometry is not None and is_gemm_geometry(geometry):
        path = "gemm"
        m = 1 << 30  # the tiles run over the whole batch's pixels: never a short M
    elif geometry is not None and geometry.groups == 1 and cin_g <= 4:
        # Space-to-depth (and, where it removes channel padding, folding the last dim's taps):
        # e.g. the ResNet stem 7×7/2, C_in 3 -> 4×4 taps of 12 channels instead of 7×7 of 3,
        # each padded to 16 (256 instead of 784 reduction rows per output).
        a_w = s2d_taps(geometry)[-1]
        c = small_cin_channels(geometry, False)

        def kpad(v):
            return round_up(v, max(16, min(64, next_pow2(v))))

        fold = a_w * kpad(c) > kpad(a_w * c)
        if math.prod(geometry.stride) > 1 or fold:
            path = "small_cin"
            cin_g = small_cin_channels(geometry, fold)
    bk = max(16, min(64 if narrow else 32, next_pow2(cin_g)))
    bn = max(16, min(128, next_pow2(cout_g)))
    bm = max(16, min(128 if narrow else 64, next_pow2(m)))
    warps = 8 if bm * bn >= 128 * 128 else 4
    return ConvBlocks(
        block_m=bm,
        block_n=bn,
        block_k=bk,
        num_warps=warps,
        num_stages=3,
        path=path,
        fold_kw=fold,
    )


def choose_blocks(
    c_in_per_group: int,
    c_out_per_group: int,
    m: int,
    dtype: Any,
    *,
    backend: str = "gpu",
    geometry: ConvGeometry | None = None,
    device_kind: str | None = None,
    table: Any = None,
) -> ConvBlocks:
    """The tile sizes and kernel path for one convolution: a table entry, else a heuristic.

    With ``table`` (``pallas_conv`` passes :func:`dlref.kernels.tuning.default_table`),
    ``geometry`` and the GPU backend, the entry for the device kind, the batch-free shape
    signature and the dtype is returned when there is one. Otherwise the heuristic:
    power-of-two blocks of at least 16 (``tl.dot``'s minimum), ``block_k`` up to 64 (32 for
    float32, whose tiles are twice as large), ``block_n`` up to 128, and ``block_m`` 128 for
    16-bit inputs (64 for float32) unless the output is smaller; the ``"gemm"`` path for 1×1
    stride-1 unpadded single-group convs, the ``"small_cin"`` path for single-group convs with
    at most 4 input channels that are strided (or whose taps fold into fewer padded channels).
    TPU: block dims that respect the (8, 128) tiling: channel blocks of 128, ``block_m`` a
    multiple of 8.

    Args:
      c_in_per_group: ``C_in / groups``.
      c_out_per_group: ``C_out / groups``.
      m: output pixels per image in the kernel's "wide" layout (:func:`wide_m`).
      dtype: input dtype.
      backend: ``"gpu"`` (also used by the generic interpreter) or ``"tpu"``.
      geometry: the convolution's :class:`ConvGeometry`; enables the table and the paths.
      device_kind: the table's device key; ``None`` means :func:`target_device`'s.
      table: a :class:`dlref.kernels.tuning.TuningTable` to consult first, or ``None``.

    Returns:
      A :class:`ConvBlocks`.

    Raises:
      TypeError: non-int sizes, an unknown dtype, a geometry, device kind or table of the
        wrong type.
      ValueError: a size < 1; a backend other than ``"gpu"`` or ``"tpu"``.

    Example:
      >>> b = choose_blocks(3, 64, 12544, jnp.bfloat16)     # the ResNet stem, no table
      >>> (b.block_k, b.block_n, b.block_m)
      (16, 64, 128)
    """
    op = "choose_blocks"
    c_in_per_group = _checks.check_int(c_in_per_group, "c_in_per_group", op, minimum=1)
    c_out_per_group = _checks.check_int(c_out_per_group, "c_out_per_group", op, minimum=1)
    m = _checks.check_int(m, "m", op, minimum=1)
    dtype = _checks.check_dtype(dtype, "dtype", op)
    _checks.check_choice(backend, ("gpu", "tpu"), "backend", op)
    if geometry is not None and not isinstance(geometry, ConvGeometry):
        raise TypeError(f"{op}: geometry must be a ConvGeometry or None, got {geometry!r}")
    if device_kind is not None and not isinstance(device_kind, str):
        raise TypeError(f"{op}: device_kind must be a str or None, got {device_kind!r}")
    if table is not None and not hasattr(table, "lookup"):
        raise TypeError(f"{op}: table must be a TuningTable or None, got {table!r}")
    if table is not None and backend == "gpu" and geometry is not None:
        kind = target_device().device_kind if device_kind is None else device_kind
        hit = table.lookup(kind, conv_signature(geometry), dtype)
        if hit is not None:
            return hit
    return _heuristic_blocks(c_in_per_group, c_out_per_group, m, dtype, backend, geometry)


def conv_signature(geo: ConvGeometry) -> str:
    """The batch-free shape signature of a convolution (a tuning table's shape key).

    Args:
      geo: a :class:`ConvGeometry`.

    Returns:
      A string such as ``"k3x3_s1x1_d1x1_p1-1_1-1_g1_in56x56_c64-64"``.

    Example:
      >>> conv_signature(conv_geometry(jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 4)),
      ...                              1, 1, 1, 1, "doc"))
      'k3x3_s1x1_d1x1_p1-1_1-1_g1_in8x8_c3-4'
    """

    def dims(v):
        return "x".join(str(i) for i in v)

    pads = "_".join(f"{lo}-{hi}" for lo, hi in geo.padding)
    return (
        f"k{dims(geo.kernel)}_s{dims(geo.stride)}_d{dims(geo.dilation)}_p{pads}_g{geo.groups}"
        f"_in{dims(geo.in_sizes)}_c{geo.c_in}-{geo.c_out}"
    )


def _struct(shape, dtype) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(int(v) for v in shape), dtype)


def _check_dy(dy: Any, geo: ConvGeometry, n: int, op: str) -> None:
    _checks.check_floating(dy, "dy", op)
    want = geo.y_shape(n)
    if tuple(jnp.shape(dy)) != want:
        raise ValueError(
            f"{op}: dy must have the convolution's output shape {want}, got {jnp.shape(dy)}"
        )


def input_grad_geometry(
    dy: Any,
    w: Any,
    input_shape: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    op: str,
) -> ConvGeometry:
    """Validate the operands of an input gradient ``dx = ∂⟨conv(x, w), dy⟩/∂x``.

    ``input_shape`` is ``x``'s shape ``(N, *spatial, C_in)`` (a strided convolution maps
    several input sizes to one output size, so it cannot be read off ``dy``).

    Returns:
      The forward convolution's :class:`ConvGeometry`.

    Raises:
      ValueError: what :func:`conv_geometry` raises, or ``dy`` not of the output's shape.
      TypeError: non-floating ``dy`` or ``w``; non-int arguments.
    """
    input_shape = _checks.as_shape(input_shape, "input_shape", op)
    w = _checks.as_array(w, "w", op)
    geo = conv_geometry(
        _struct(input_shape, jnp.result_type(w)), w, stride, padding, dilation, groups, op
    )
    _check_dy(dy, geo, input_shape[0], op)
    return geo


def weight_grad_geometry(
    x: Any,
    dy: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    op: str,
) -> ConvGeometry:
    """Validate the operands of a weight gradient ``dw = ∂⟨conv(x, w), dy⟩/∂w``.

    The kernel is ``(*kernel_size, C_in // groups, dy.shape[-1])``.

    Returns:
      The forward convolution's :class:`ConvGeometry`.

    Raises:
      ValueError: what :func:`conv_geometry` raises, or ``dy`` not of the output's shape.
      TypeError: non-floating ``x`` or ``dy``; non-int arguments.
    """
    x, dy = _checks.as_array(x, "x", op), _checks.as_array(dy, "dy", op)
    nd = _checks.check_rank(x, (3, 4, 5), "x", op) - 2
    kernel = _checks.as_tuple(kernel_size, nd, "kernel_size", op, minimum=1)
    groups = _checks.check_int(groups, "groups", op, minimum=1)
    _checks.check_rank(dy, jnp.ndim(x), "dy", op)
    w = _struct((*kernel, jnp.shape(x)[-1] // groups, jnp.shape(dy)[-1]), jnp.result_type(x))
    geo = conv_geometry(x, w, stride, padding, dilation, groups, op)
    _check_dy(dy, geo, jnp.shape(x)[0], op)
    return geo
