"""Shape arithmetic: output sizes of convolution, pooling and transposed convolution.

This module sits at the bottom of dlref's dependency graph (only ``_checks`` below it), so the
ops and the kernels can all use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as _jcore

__all__ = [
    "conv_output_size",
    "conv_transpose_output_size",
    "receptive_field",
    "ReceptiveField",
    "conv_params",
    "ParamCount",
    "conv_flops",
    "pool_flops",
    "activation_flops",
    "batch_norm_flops",
    "activation_bytes",
    "summary",
    "Summary",
    "SummaryRow",
    "SummaryTotals",
    "CONVENTIONS",
]


def _is_seq(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str)


def _check_int(v: Any, name: str, op: str, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return v


def _pad_pair(p: Any, op: str) -> tuple[int, int]:
    if _is_seq(p):
        if len(p) != 2:
            raise ValueError(f"{op}: padding must be an int or a (lo, hi) pair, got {p!r}")
        lo, hi = p
    else:
        lo = hi = p
    return _check_int(lo, "padding", op, 0), _check_int(hi, "padding", op, 0)


def _per_dim(n: Sequence[int], value: Any, name: str, op: str) -> list:
    """Broadcast a scalar to one entry per dimension; a tuple must have one per dimension."""
    m = len(n)
    if not _is_seq(value):
        return [value] * m
    if len(value) != m:
        raise ValueError(f"{op}: {name} must have one entry per dimension ({m}), got {value!r}")
    return list(value)


def _conv_output_size_1d(n, k, s, p, d, ceil_mode, op) -> int:
    n = _check_int(n, "input size n", op, 1)
    k = _check_int(k, "kernel size k", op, 1)
    s = _check_int(s, "stride s", op, 1)
    d = _check_int(d, "dilation d", op, 1)
    lo, hi = _pad_pair(p, op)
    span = n + lo + hi - d * (k - 1) - 1  # last valid start of the dilated window
    if span < 0:
        raise ValueError(
            f"{op}: the dilated kernel d*(k-1)+1={d * (k - 1) + 1} is larger than the padded "
            f"input n+lo+hi={n + lo + hi}; there is no output"
        )
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    # PyTorch's pooling rule: the last window must start inside the input or the left padding.
    if (out - 1) * s >= n + lo:
        out -= 1
    return out


def conv_output_size(n, k, s=1, p=0, d=1, *, ceil_mode=False):
    r"""Output size of a convolution or pooling window along one (or each) spatial dimension.

    .. math::
        out = \left\lfloor \frac{n + p_{lo} + p_{hi} - d\,(k - 1) - 1}{s} \right\rfloor + 1

    With ``ceil_mode=True`` the floor becomes a ceiling, and — PyTorch's rule for pooling — a
    last window that would start inside the right padding is dropped
    (``if (out - 1)·s >= n + p_lo: out -= 1``).

    Matches the output shapes of ``lax.conv_general_dilated``, ``lax.reduce_window`` and
    PyTorch's ``Conv*d`` / ``MaxPool*d`` / ``AvgPool*d``. The seed writes the first formula with
    ``p`` as the *total* padding and the summary formula with ``p`` per side (SEED_ERRATA 1);
    here ``p`` is per side, or an explicit ``(lo, hi)`` pair.

    Args:
      n: input size, an int, or a tuple with one int per spatial dimension.
      k: kernel (window) size; an int or one per dimension.
      s: stride, >= 1; an int or one per dimension.
      p: padding on each side (int) or a ``(lo, hi)`` pair; with tuple ``n``, also a tuple of
        those, one per dimension.
      d: dilation, >= 1; an int or one per dimension.
      ceil_mode: round up instead of down, with PyTorch's pooling rule above.

    Returns:
      The output size: an int, or a tuple of ints when ``n`` is a tuple.

    Raises:
      ValueError: non-positive size, kernel, stride or dilation, negative padding, or a
        dilated kernel larger than the padded input (no output).
      TypeError: non-integer arguments.

    Example:
      >>> conv_output_size(224, 7, s=2, p=3)   # ResNet stem
      112
      >>> conv_output_size(5, 2, s=2, ceil_mode=True)
      3

    References:
      Dumoulin and Visin, "A guide to convolution arithmetic for deep learning", 2016,
      https://arxiv.org/abs/1603.07285.
    """
    op = "conv_output_size"
    if not _is_seq(n):
        return _conv_output_size_1d(n, k, s, p, d, ceil_mode, op)
    n = list(n)
    ks, ss, ds = (_per_dim(n, v, nm, op) for v, nm in ((k, "k"), (s, "s"), (d, "d")))
    ps = _per_dim(n, p, "p", op)
    return tuple(
        _conv_output_size_1d(*args, ceil_mode, op) for args in zip(n, ks, ss, ps, ds, strict=True)
    )


def _conv_transpose_output_size_1d(n, k, s, p, output_padding, d, op) -> int:
    n = _check_int(n, "input size n", op, 1)
    k = _check_int(k, "kernel size k", op, 1)
    s = _check_int(s, "stride s", op, 1)
    d = _check_int(d, "dilation d", op, 1)
    p = _check_int(p, "padding p", op, 0)
    op_ = _check_int(output_padding, "output_padding", op, 0)
    if op_ >= s and op_ >= d:
        raise ValueError(
            f"{op}: output_padding={op_} must be smaller than either stride s={s} or "
            f"dilation d={d} (PyTorch's rule)"
        )
    out = (n - 1) * s - 2 * p + d * (k - 1) + op_ + 1
    if out < 1:
        raise ValueError(f"{op}: padding p={p} leaves no output (size {out})")
    return out


def conv_transpose_output_size(n, k, s=1, p=0, output_padding=0, d=1):
    r"""Output size of a transposed convolution (PyTorch's ``ConvTranspose*d`` rule).

    .. math:: out = (n - 1)\,s - 2p + d\,(k - 1) + output\_padding + 1

    It inverts :func:`conv_output_size`: a convolution with the same ``k, s, p, d`` maps
    ``out`` back to ``n``; ``output_padding`` (smaller than ``s`` or ``d``) picks among the
    ``s`` input sizes that a strided convolution maps to the same ``n``. The seed's
    ``(n − 1)·s + k`` is the special case ``p = 0, d = 1, output_padding = 0``
    (SEED_ERRATA 2).

    Args:
      n: input size; an int or a tuple with one int per spatial dimension.
      k: kernel size; an int or one per dimension.
      s: stride; an int or one per dimension.
      p: padding removed from each side of the full output; an int or one per dimension.
      output_padding: extra size added to one side; an int or one per dimension.
      d: dilation; an int or one per dimension.

    Returns:
      The output size: an int, or a tuple of ints when ``n`` is a tuple.

    Raises:
      ValueError: ``output_padding`` not smaller than ``s`` or ``d``, non-positive sizes, or
        padding that leaves no output.
      TypeError: non-integer arguments.

    Example:
      >>> conv_transpose_output_size(4, 3, s=2, p=1, output_padding=1)   # 4 -> 8
      8
    """
    op = "conv_transpose_output_size"
    if not _is_seq(n):
        return _conv_transpose_output_size_1d(n, k, s, p, output_padding, d, op)
    n = list(n)
    vals = [
        _per_dim(n, v, nm, op)
        for v, nm in ((k, "k"), (s, "s"), (p, "p"), (output_padding, "output_padding"), (d, "d"))
    ]
    return tuple(_conv_transpose_output_size_1d(*args, op) for args in zip(n, *vals, strict=True))


# --------------------------------------------------------------------------------------------
# Receptive fields
# --------------------------------------------------------------------------------------------


class ReceptiveField(NamedTuple):
    """The receptive field of the units of one layer, in input-pixel coordinates.

    Attributes:
      size: extent of one unit's field, ``r = hi - lo + 1`` input pixels (the span, holes of
        a dilated kernel included).
      jump: distance in input pixels between the fields of neighbouring units (the product of
        the strides so far; Araujo et al.'s "effective stride").
      start: centre of the first unit's field; input pixel ``i`` sits at ``i``, so unit ``u``
        sees ``[start + u·jump − (size − 1)/2, start + u·jump + (size − 1)/2]``. Negative
        values reach into the padding. A float, a half-integer when ``size`` is even.
    """

    size: Any
    jump: Any
    start: Any


def _layer_1d(layer: Any, i: int, op: str) -> tuple[int, int, int, int]:
    if not _is_seq(layer) or not 1 <= len(layer) <= 4:
        raise ValueError(
            f"{op}: layer {i} must be a (kernel, stride, padding, dilation) tuple "
            f"(trailing entries optional), got {layer!r}"
        )
    k, s, p, d = tuple(layer) + (1, 0, 1)[len(layer) - 1 :]
    k = _check_int(k, f"kernel of layer {i}", op, 1)
    s = _check_int(s, f"stride of layer {i}", op, 1)
    d = _check_int(d, f"dilation of layer {i}", op, 1)
    lo, _ = _pad_pair(p, op)
    return k, s, lo, d


def _rf_1d(layers: Sequence[Any], op: str) -> list[ReceptiveField]:
    size, jump, start = 1, 1, 0.0
    out = []
    for i, layer in enumerate(layers):
        k, s, lo, d = _layer_1d(layer, i, op)
        k_eff = d * (k - 1) + 1
        start = start + ((k_eff - 1) / 2 - lo) * jump
        size = size + (k_eff - 1) * jump
        jump = jump * s
        out.append(ReceptiveField(size, jump, start))
    return out


def receptive_field(layers):
    r"""Receptive field size, jump and start of every layer of a sequential network.

    Layer ``l`` with kernel ``k``, stride ``s``, left padding ``p`` and dilation ``d``
    (effective kernel ``k_eff = d(k − 1) + 1``) composes as

    .. math::
        r_l = r_{l-1} + (k_{eff} - 1)\, j_{l-1},\qquad
        j_l = j_{l-1}\, s,\qquad
        start_l = start_{l-1} + \Big(\frac{k_{eff} - 1}{2} - p\Big)\, j_{l-1}

    from ``r_0 = j_0 = 1`` and ``start_0 = 0``. This is the seed's top-down recursion
    ``F = (F' − 1)·stride + d·(k − 1) + 1`` run bottom-up; the seed's ``outFromIn`` computes
    the *output size and total stride* instead and is not a receptive field (SEED_ERRATA 4).
    For branching networks use :func:`summary`, which takes the union over paths.

    Args:
      layers: a sequence of ``(kernel, stride, padding, dilation)`` tuples; trailing entries
        may be left out (stride 1, padding 0, dilation 1). ``padding`` is an int per side or a
        ``(lo, hi)`` pair (only ``lo`` moves the field). For a network with several spatial
        dimensions, give ``kernel`` as a tuple and every entry either as an int (all dims) or
        as a tuple with one entry per dim.

    Returns:
      A list with one :class:`ReceptiveField` ``(size, jump, start)`` per layer; its entries
      are tuples (one per spatial dim) when kernels are tuples.

    Raises:
      ValueError: a malformed layer, non-positive kernel, stride or dilation, or negative
        padding.
      TypeError: non-integer entries.

    Example:
      >>> [f.size for f in receptive_field([(3,), (3,)])]   # two 3×3 convs see 5×5
      [3, 5]
      >>> receptive_field([(7, 2, 3), (3, 2, 1)])[-1]        # ResNet stem: conv 7/2, pool 3/2
      ReceptiveField(size=11, jump=4, start=0.0)

    References:
      Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional Neural Networks",
      Distill, 2019, https://distill.pub/2019/computing-receptive-fields/.
    """
    op = "receptive_field"
    if not _is_seq(layers) or len(layers) == 0:
        raise ValueError(f"{op}: layers must be a non-empty sequence of tuples, got {layers!r}")
    first = layers[0]
    if not (_is_seq(first) and len(first) >= 1 and _is_seq(first[0])):
        return _rf_1d(layers, op)
    m = len(first[0])
    per_dim: list[list[tuple]] = [[] for _ in range(m)]
    for i, layer in enumerate(layers):
        if not _is_seq(layer) or not 1 <= len(layer) <= 4 or not _is_seq(layer[0]):
            raise ValueError(
                f"{op}: layer {i} must have a per-dimension kernel tuple like layer 0, "
                f"got {layer!r}"
            )
        if len(layer[0]) != m:
            raise ValueError(f"{op}: layer {i} kernel must have {m} entries, got {layer[0]!r}")
        entries = [list(layer[0])]
        for j, v in enumerate(layer[1:], start=1):
            name = ("stride", "padding", "dilation")[j - 1]
            entries.append(_per_dim([0] * m, v, f"{name} of layer {i}", op))
        for dim in range(m):
            per_dim[dim].append(tuple(e[dim] for e in entries))
    fields = [_rf_1d(ls, op) for ls in per_dim]
    return [
        ReceptiveField(*(tuple(f[i][c] for f in fields) for c in range(3)))
        for i in range(len(layers))
    ]


# --------------------------------------------------------------------------------------------
# Parameters and FLOPs
# --------------------------------------------------------------------------------------------

CONVENTIONS = ("macs", "flops", "seed")


def _check_convention(convention: Any, op: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"{op}: convention must be one of {CONVENTIONS}, got {convention!r}")


def _kernel_dims(k: Any, op: str, ndim: int | None = None) -> tuple[int, ...]:
    """An int kernel is square (``ndim`` dims, 2 unless given); a tuple gives one per dim."""
    if _is_seq(k):
        ks = tuple(k)
        if ndim is not None and len(ks) != ndim:
            raise ValueError(f"{op}: kernel size k must have {ndim} entries, got {k!r}")
    else:
        ks = (k,) * (2 if ndim is None else ndim)
    return tuple(_check_int(v, "kernel size k", op, 1) for v in ks)


def _prod(xs: Any) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


@dataclasses.dataclass(frozen=True)
class ParamCount:
    """Parameter count of a layer, split as frameworks report it.

    Attributes:
      weight: kernel entries.
      bias: conv bias entries.
      bn: BN's trainable scale γ and shift β (2 per channel).
      bn_stats: BN's running mean and variance (2 per channel): state, not trained by the
        optimizer, but saved with the model.
    """

    weight: int
    bias: int = 0
    bn: int = 0
    bn_stats: int = 0

    @property
    def trainable(self) -> int:
        """What ``sum(p.numel() for p in model.parameters())`` counts in PyTorch."""
        return self.weight + self.bias + self.bn

    @property
    def non_trainable(self) -> int:
        """The running statistics (PyTorch buffers, flax ``nnx.BatchStat``)."""
        return self.bn_stats

    @property
    def total(self) -> int:
        """Everything stored with the model."""
        return self.trainable + self.non_trainable

    def __add__(self, other: ParamCount) -> ParamCount:
        return ParamCount(
            *(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other)))
        )


def conv_params(c_in, c_out, k, *, bias=True, groups=1, batch_norm=False, separable=False):
    r"""Number of parameters of a convolution layer (optionally followed by batch norm).

    .. math::
        \underbrace{\tfrac{C}{g}\, \textstyle\prod_i k_i\, O}_{\text{weight}}
        + \underbrace{O}_{\text{bias}}
        + \underbrace{2O}_{\text{BN } \gamma, \beta}
        \;\big[+\ \underbrace{2O}_{\text{BN running mean, var}}\big]

    With ``separable=True`` the layer is a depthwise-separable convolution: a depthwise
    ``k×k`` convolution (``groups = C``, ``C → C``) followed by a pointwise ``1×1``
    convolution ``C → O``, each with its own bias / BN (as in MobileNet), so its weights are
    ``C·k² + C·O`` instead of ``C·k²·O``.

    Matches ``sum(p.numel() for p in layer.parameters())`` of PyTorch's ``Conv2d`` (+
    ``BatchNorm2d``) for :attr:`ParamCount.trainable`, and flax's ``nnx.Param`` count.
    The seed's ``C·K·K·O + 3·O`` counts a bias *and* BN's γ, β — frameworks usually drop the
    bias before BN (it is cancelled by the mean subtraction) — and leaves out BN's ``2·O``
    running statistics and the groups (SEED_ERRATA 5).

    Args:
      c_in: input channels ``C``.
      c_out: output channels ``O``.
      k: kernel size; an int means a square 2-D ``k×k`` kernel, a tuple gives one size per
        spatial dimension.
      bias: whether the convolution has a bias.
      groups: ``g``; ``C`` and ``O`` must be divisible by it.
      batch_norm: whether a BN layer over the ``O`` outputs follows.
      separable: count a depthwise-separable convolution instead (``groups`` must be 1).

    Returns:
      A :class:`ParamCount` with ``weight``, ``bias``, ``bn``, ``bn_stats`` and the derived
      ``trainable``, ``non_trainable`` and ``total``.

    Raises:
      ValueError: non-positive sizes, channels not divisible by ``groups``, or
        ``separable=True`` with ``groups != 1``.
      TypeError: non-integer sizes.

    Example:
      >>> conv_params(64, 128, 3).trainable            # 64·9·128 + 128
      73856
      >>> p = conv_params(64, 128, 3, bias=False, batch_norm=True)
      >>> (p.trainable, p.non_trainable)               # + γ, β ; running mean, var
      (73984, 256)
    """
    op = "conv_params"
    c = _check_int(c_in, "input channels c_in", op, 1)
    o = _check_int(c_out, "output channels c_out", op, 1)
    ks = _kernel_dims(k, op)
    g = _check_int(groups, "groups", op, 1)
    if separable:
        if g != 1:
            raise ValueError(f"{op}: separable=True fixes the groups; got groups={g}")
        depthwise = conv_params(c, c, ks, bias=bias, groups=c, batch_norm=batch_norm)
        pointwise = conv_params(c, o, (1,) * len(ks), bias=bias, batch_norm=batch_norm)
        return depthwise + pointwise
    if c % g or o % g:
        raise ValueError(
            f"{op}: input channels C={c} and output channels O={o} must be divisible by groups={g}"
        )
    return ParamCount(
        weight=c // g * _prod(ks) * o,
        bias=o if bias else 0,
        bn=2 * o if batch_norm else 0,
        bn_stats=2 * o if batch_norm else 0,
    )


def _padding_taps_1d(n: int, k: int, s: int, lo: int, d: int, out: int) -> int:
    """Number of (output position, tap) pairs that land inside the input, along one dim."""
    return sum(1 for u in range(out) for t in range(k) if 0 <= u * s - lo + t * d < n)


def conv_flops(
    c_in,
    c_out,
    k,
    size,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    bias=True,
    batch=1,
    separable=False,
    convention="macs",
    count_padding=True,
):
    r"""Arithmetic cost of a convolution layer, in a stated convention.

    With ``N`` the batch, ``O`` the output channels, ``H'W'`` the output positions and
    ``C/g`` the input channels each output sees:

    .. math::
        \text{MACs} = N\, O\, H' W' \cdot \tfrac{C}{g}\, K^2,\qquad
        \text{flops} = 2\,\text{MACs} + [\text{bias}]\; N\, O\, H' W',

    and the seed's count (its 计算量 steps 1–5),

    .. math::
        \text{seed} = N\, O\, \big(\tfrac{C}{g}\, H' W' (2K^2 - 1) + (C/g - 1)\big).

    ``"flops"`` counts a multiply and an add per tap (XLA's and most papers' convention);
    without a bias the exact count is ``N·O·H'W'·(2·C·K²/g − 1)`` (``C·K²/g − 1`` additions
    per output), and a bias adds the one back. The seed adds the ``C − 1`` partial sums once
    per output *map* instead of once per output *element* (SEED_ERRATA 7); it is computed
    here with the correct output sizes (the seed's step 2 writes ``H`` where ``W`` belongs,
    SEED_ERRATA 6) and ignores the bias, as the seed does.

    ``count_padding=False`` counts only the taps that land inside the input, not on padding
    zeros — what XLA's ``cost_analysis()`` reports on the CPU (``2·`` these MACs).

    Args:
      c_in: input channels ``C``.
      c_out: output channels ``O``.
      k: kernel size: an int (square 2-D) or one per spatial dim.
      size: input spatial size: an int (square) or one per spatial dim.
      stride: an int or one per dim.
      padding: per side: an int, a ``(lo, hi)`` pair, or one of those per dim.
      dilation: an int or one per dim (does not change the cost, only the output size).
      groups: ``g``.
      bias: count the bias additions (``"flops"`` only).
      batch: ``N``.
      separable: a depthwise ``k×k`` (groups ``C``) then pointwise ``1×1`` convolution; the
        sum of the two layers' costs.
      convention: ``"macs"``, ``"flops"`` or ``"seed"``.
      count_padding: count taps on padding zeros (the dense definition; default).

    Returns:
      The count, a Python int.

    Raises:
      ValueError: unknown convention, bad sizes (see :func:`conv_output_size`), channels not
        divisible by groups.

    Example:
      >>> conv_flops(3, 64, 7, 224, stride=2, padding=3)         # ResNet stem, MACs
      118013952
      >>> conv_flops(3, 64, 7, 224, stride=2, padding=3, convention="flops", bias=False)
      236027904
    """
    op = "conv_flops"
    _check_convention(convention, op)
    c = _check_int(c_in, "input channels c_in", op, 1)
    o = _check_int(c_out, "output channels c_out", op, 1)
    b = _check_int(batch, "batch", op, 1)
    g = _check_int(groups, "groups", op, 1)
    ks = _kernel_dims(k, op, len(size) if _is_seq(size) else None)
    m = len(ks)
    sizes = tuple(size) if _is_seq(size) else (size,) * m
    strides = _per_dim(sizes, stride, "stride", op)
    dils = _per_dim(sizes, dilation, "dilation", op)
    if _is_seq(padding) and len(padding) == m and (m != 2 or any(_is_seq(v) for v in padding)):
        pads = list(padding)
    else:
        pads = [padding] * m
    if separable:
        if g != 1:
            raise ValueError(f"{op}: separable=True fixes the groups; got groups={g}")
        common = dict(batch=b, convention=convention, bias=bias, count_padding=count_padding)
        dw = conv_flops(
            c, c, ks, sizes, stride=strides, padding=pads, dilation=dils, groups=c, **common
        )
        out = conv_output_size(sizes, ks, strides, pads, dils)
        return dw + conv_flops(c, o, (1,) * m, out, **common)
    if c % g or o % g:
        raise ValueError(
            f"{op}: input channels C={c} and output channels O={o} must be divisible by groups={g}"
        )
    outs = conv_output_size(sizes, ks, strides, pads, dils)
    positions = _prod(outs)
    c_g = c // g
    taps = _prod(ks)
    if not count_padding:
        taps_per_map = _prod(
            _padding_taps_1d(n, kk, s, _pad_pair(p, op)[0], d, on)
            for n, kk, s, p, d, on in zip(sizes, ks, strides, pads, dils, outs)
        )
    else:
        taps_per_map = positions * taps
    macs = b * o * c_g * taps_per_map
    if convention == "macs":
        return macs
    if convention == "flops":
        return 2 * macs + (b * o * positions if bias else 0)
    return b * o * (c_g * positions * (2 * taps - 1) + (c_g - 1))


_POOL_KINDS = ("max", "avg")


def pool_flops(
    channels,
    k,
    size,
    *,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    batch=1,
    kind="max",
    convention="flops",
):
    r"""Arithmetic cost of max or average pooling.

    .. math::
        \text{max: } N C H' W' (K^2 - 1)\ \text{comparisons},\qquad
        \text{avg: } N C H' W' (K^2 - 1)\ \text{additions} + N C H' W'\ \text{divisions}

    Pooling has no multiply–accumulates: under ``"macs"`` it costs 0 (so a network's MAC
    total is its conv + linear MACs, the number papers quote). ``"flops"`` and ``"seed"``
    (the seed counts only convolutions) give the count above. The max count equals XLA's
    ``cost_analysis()`` for ``lax.reduce_window`` (which counts the taps on padding too).

    Args:
      channels: ``C``.
      k: window: an int (square 2-D) or one per spatial dim.
      size: input spatial size: an int (square) or one per spatial dim.
      stride: an int or one per dim; ``None`` means the window.
      padding: per side, as :func:`conv_output_size`.
      dilation: an int or one per dim.
      ceil_mode: PyTorch's ``ceil_mode`` (see :func:`conv_output_size`).
      batch: ``N``.
      kind: ``"max"`` or ``"avg"``.
      convention: ``"macs"``, ``"flops"`` or ``"seed"``.

    Returns:
      The count, a Python int.

    Raises:
      ValueError: unknown kind or convention, or bad sizes.

    Example:
      >>> pool_flops(64, 3, 112, stride=2, padding=1)   # ResNet max pool: 64·56·56·8
      1605632
    """
    op = "pool_flops"
    _check_convention(convention, op)
    if kind not in _POOL_KINDS:
        raise ValueError(f"{op}: kind must be one of {_POOL_KINDS}, got {kind!r}")
    c = _check_int(channels, "channels", op, 1)
    b = _check_int(batch, "batch", op, 1)
    ks = _kernel_dims(k, op, len(size) if _is_seq(size) else None)
    m = len(ks)
    sizes = tuple(size) if _is_seq(size) else (size,) * m
    strides = ks if stride is None else stride
    outs = conv_output_size(sizes, ks, strides, padding, dilation, ceil_mode=ceil_mode)
    n_out = b * c * _prod(outs)
    if convention == "macs":
        return 0
    return n_out * (_prod(ks) - 1) + (n_out if kind == "avg" else 0)


def _numel(shape: Any, op: str) -> int:
    if _is_seq(shape):
        return _prod(_check_int(v, "shape entry", op, 0) for v in shape)
    return _check_int(shape, "number of elements", op, 0)


# Operations per element, transcendental functions (exp, tanh) counted as one: the sum of
# XLA's "flops" and "transcendentals" for the jax.nn function on the CPU.
_ACTIVATION_OPS = {"relu": 1, "leaky_relu": 3, "sigmoid": 4, "tanh": 1}


def activation_flops(shape, *, kind="relu", convention="flops"):
    r"""Arithmetic cost of an elementwise activation over a tensor of ``shape``.

    .. math:: \text{cost} = c_{kind} \cdot \textstyle\prod shape

    with ``c`` = 1 for relu (``max(x, 0)``), 3 for leaky_relu (compare, multiply, select),
    4 for sigmoid (``1/(1 + e^{−x})``: negate, exp, add, divide), 1 for tanh; a
    transcendental counts as one operation. These are XLA's ``flops + transcendentals`` for
    the ``jax.nn`` functions on the CPU. Under ``"macs"`` the cost is 0.

    Args:
      shape: the tensor's shape (a tuple) or its number of elements (an int).
      kind: ``"relu"``, ``"leaky_relu"``, ``"sigmoid"`` or ``"tanh"``.
      convention: ``"macs"``, ``"flops"`` or ``"seed"`` (same as ``"flops"``).

    Returns:
      The count, a Python int.

    Raises:
      ValueError: unknown kind or convention.

    Example:
      >>> activation_flops((1, 112, 112, 64))
      802816
    """
    op = "activation_flops"
    _check_convention(convention, op)
    if kind not in _ACTIVATION_OPS:
        raise ValueError(f"{op}: kind must be one of {tuple(_ACTIVATION_OPS)}, got {kind!r}")
    n = _numel(shape, op)
    return 0 if convention == "macs" else _ACTIVATION_OPS[kind] * n


def batch_norm_flops(shape, *, train=False, convention="flops"):
    r"""Arithmetic cost of batch normalization over a tensor of ``shape``.

    .. math::
        \text{inference: } 3 \textstyle\prod shape \quad
        (x - \mu,\ \cdot\ \gamma/\sqrt{\sigma^2 + \epsilon},\ +\ \beta),\qquad
        \text{training: } 6 \textstyle\prod shape

    Inference subtracts the mean, multiplies by the per-channel factor and adds the shift
    (flax's ``nnx.BatchNorm`` sequence; the per-channel factor costs ``O(C)``, ignored).
    Training also computes the batch mean (one addition per element) and variance (square
    and add, reusing ``x − μ``). Folding inference BN into the preceding convolution
    (``dlref.norm.fold_batch_norm``) makes it free. Under ``"macs"`` the cost is 0.

    Args:
      shape: the tensor's shape (a tuple) or its number of elements (an int).
      train: count the batch statistics too.
      convention: ``"macs"``, ``"flops"`` or ``"seed"`` (same as ``"flops"``).

    Returns:
      The count, a Python int.

    Raises:
      ValueError: unknown convention.

    Example:
      >>> batch_norm_flops((1, 56, 56, 64))
      602112
    """
    op = "batch_norm_flops"
    _check_convention(convention, op)
    n = _numel(shape, op)
    return 0 if convention == "macs" else (6 if train else 3) * n


def activation_bytes(shape, *, dtype="float32"):
    r"""Memory of a feature map (or of a list of them: a whole network) in bytes.

    .. math:: \text{bytes} = \textstyle\prod shape \cdot \text{itemsize}(dtype)

    Feature maps, not weights, dominate training memory: each layer's output is kept for the
    backward pass (the seed's note under 参数量). ``summary`` reports this per layer.

    Args:
      shape: a shape tuple, or a list of shape tuples (summed).
      dtype: anything ``numpy.dtype`` accepts (``"float32"``, ``jnp.bfloat16``, ...).

    Returns:
      Bytes, a Python int.

    Raises:
      ValueError: negative shape entries.

    Example:
      >>> activation_bytes((1, 112, 112, 64))             # ResNet stem output, float32
      3211264
      >>> activation_bytes([(2, 3), (4,)], dtype="bfloat16")
      20
    """
    op = "activation_bytes"
    itemsize = jnp.dtype(dtype).itemsize
    if _is_seq(shape) and len(shape) and all(_is_seq(s) for s in shape):
        return sum(_numel(s, op) * itemsize for s in shape)
    return _numel(shape, op) * itemsize


# --------------------------------------------------------------------------------------------
# summary: a per-layer table read from the jaxpr
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """One layer of :func:`summary`: a main operation and the elementwise ops fused after it.

    Attributes:
      op: a label, e.g. ``"conv 7×7/2 +bn+relu"``, ``"max_pool 3×3/2"``, ``"dense +bias"``.
      shape: output shape.
      dtype: output dtype name.
      receptive_field: the field size per spatial axis of the output, or ``None`` once the
        spatial axes are gone (after global pooling or flattening, units see everything).
      jump: input pixels between neighbouring output units, per spatial axis, or ``None``.
      start: centre of the first unit's field per spatial axis (input pixel ``i`` at ``i``),
        or ``None``; unit ``u`` sees ``start + u·jump ± (receptive_field − 1)/2``.
      params: trainable parameters first used by this layer.
      non_trainable: non-trainable state first used here (e.g. BN running statistics).
      flops: the cost in the summary's convention.
      bytes: activation memory of the output.
    """

    op: str
    shape: tuple[int, ...]
    dtype: str
    receptive_field: tuple | None
    jump: tuple | None
    start: tuple | None
    params: int
    non_trainable: int
    flops: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class SummaryTotals:
    """Totals of :func:`summary`.

    Attributes:
      params: trainable parameters (each parameter array counted once).
      non_trainable: non-trainable state.
      flops: total cost in ``convention``.
      activation_bytes: sum of the layers' output sizes in bytes.
      receptive_field: the field of the last layer that still had spatial axes.
      jump: its jump.
      convention: ``"macs"``, ``"flops"`` or ``"seed"``.
    """

    params: int
    non_trainable: int
    flops: int
    activation_bytes: int
    receptive_field: tuple | None
    jump: tuple | None
    convention: str


@dataclasses.dataclass(frozen=True)
class Summary:
    """The table of :func:`summary` as data; ``str()`` formats it."""

    rows: tuple[SummaryRow, ...]
    totals: SummaryTotals

    def __str__(self) -> str:
        return _format_summary(self)


def _fmt_field(v: Any) -> str:
    if v is None:
        return "all"
    return "×".join(str(int(x)) if float(x).is_integer() else f"{float(x):g}" for x in v)


def _format_summary(s: Summary) -> str:
    unit = {"macs": "MACs", "flops": "FLOPs", "seed": "seed FLOPs"}[s.totals.convention]
    head = ("#", "op", "output shape", "RF", "jump", "params", unit, "bytes")
    body = [
        (
            str(i),
            r.op,
            "(" + ", ".join(map(str, r.shape)) + ")",
            _fmt_field(r.receptive_field),
            _fmt_field(r.jump) if r.jump is not None else "-",
            f"{r.params:,}" + (f" +{r.non_trainable:,}" if r.non_trainable else ""),
            f"{r.flops:,}",
            f"{r.bytes:,}",
        )
        for i, r in enumerate(s.rows)
    ]
    widths = [max(len(row[c]) for row in [head, *body]) for c in range(len(head))]
    right = {0, 5, 6, 7}

    def line(row):
        return "  ".join(
            cell.rjust(w) if c in right else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()

    t = s.totals
    rf = _fmt_field(t.receptive_field) if t.receptive_field is not None else "-"
    jump = _fmt_field(t.jump) if t.jump is not None else "-"
    total = (
        f"total: params {t.params:,}"
        + (f" (+{t.non_trainable:,} non-trainable)" if t.non_trainable else "")
        + f" | {unit} {t.flops:,} | activations {t.activation_bytes:,} bytes"
        + f" | final receptive field {rf} (jump {jump})"
    )
    rule = "-" * max(len(line(head)), 20)
    return "\n".join([line(head), rule, *(line(b) for b in body), rule, total])


# Primitives that move or relabel data without arithmetic.
_FREE = frozenset(
    """reshape broadcast_in_dim convert_element_type transpose squeeze slice dynamic_slice
    pad concatenate rev copy copy_p stop_gradient reduce_precision gather iota
    dynamic_update_slice sharding_constraint device_put optimization_barrier split
    expand_dims""".split()
)
_REDUCE = frozenset(
    "reduce_sum reduce_max reduce_min reduce_prod reduce_and reduce_or argmax argmin".split()
)
_POOL = frozenset("reduce_window_max reduce_window_min reduce_window_sum reduce_window".split())
# Per-element cost of elementwise primitives that are not one operation (see activation_flops).
_ELEMENTWISE_COST = {"logistic": 4}
_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


@dataclasses.dataclass(eq=False)
class _Info:
    """What the dataflow knows about one jaxpr variable."""

    data: bool
    fields: dict  # data vars: axis -> (jump, lo, hi) of unit 0, in input-pixel coordinates
    sources: frozenset  # non-data vars: ids of the parameter arrays they derive from
    shape: tuple = ()
    dtype: Any = None


def _union(fs: list[tuple]) -> tuple:
    return (max(f[0] for f in fs), min(f[1] for f in fs), max(f[2] for f in fs))


def _window(f: tuple, k: int, s: int, lo: int, rd: int = 1, ld: int = 1) -> tuple:
    """Compose a window (kernel k, stride s, left pad lo, dilations) onto the field f."""
    j, a, b = f
    if ld == 1:
        return (j * s, a - lo * j, b + (rd * (k - 1) - lo) * j)
    # lhs (base) dilation, i.e. a transposed convolution: continuous-coordinate bound
    return (j * s / ld, a - lo * j / ld, b + (rd * (k - 1) - lo) * j / ld)


def _reshape_axes(old: tuple, new: tuple) -> dict:
    """Axes of ``old`` (of size > 1) that survive a reshape unchanged, mapped into ``new``."""
    prefix_new, p = {}, 1
    for j, n in enumerate(new):
        prefix_new.setdefault((p, n), j)
        p *= n
    out, p = {}, 1
    for i, n in enumerate(old):
        if n > 1 and (p, n) in prefix_new:
            out[i] = prefix_new[(p, n)]
        p *= n
    return out


class _Tracer:
    """Walks a jaxpr once, composing fields, attributing parameters and costs to rows."""

    def __init__(self, convention: str):
        self.convention = convention
        self.sources: list[tuple[int, bool]] = []  # (size, trainable)
        self.used: set[int] = set()
        self.rows: list[dict] = []
        self.current: dict | None = None

    def new_source(self, aval: Any, trainable: bool = True) -> _Info:
        self.sources.append((_prod(aval.shape), trainable))
        return _Info(False, {}, frozenset([len(self.sources) - 1]))

    # -- dataflow ----------------------------------------------------------------------------

    def run(self, jaxpr: Any, env: dict) -> None:
        for eqn in jaxpr.eqns:
            self.eqn(eqn, env)

    def read(self, env: dict, v: Any) -> _Info:
        if isinstance(v, _jcore.Literal):
            return _Info(False, {}, frozenset(), tuple(np.shape(v.val)))
        return env[v]

    def eqn(self, eqn: Any, env: dict) -> None:
        ins = [self.read(env, v) for v in eqn.invars]
        sub = next(
            (eqn.params[p] for p in _CALL_PARAMS if p in eqn.params),
            None,
        )
        if sub is not None:
            closed = sub if hasattr(sub, "consts") else None
            inner = sub.jaxpr if closed is not None else sub
            if len(inner.invars) == len(ins) and len(inner.outvars) == len(eqn.outvars):
                sub_env = dict(zip(inner.invars, ins))
                for cv in inner.constvars:
                    sub_env[cv] = self.new_source(cv.aval)
                self.run(inner, sub_env)
                for o, io in zip(eqn.outvars, inner.outvars):
                    env[o] = self.read(sub_env, io)
                return
        data = [i for i in ins if i.data]
        if not data:
            src = frozenset().union(*(i.sources for i in ins)) if ins else frozenset()
            for o in eqn.outvars:
                env[o] = _Info(False, {}, src)
            return
        fields = self.fields(eqn, ins)
        for o in eqn.outvars:
            env[o] = _Info(True, fields, frozenset(), tuple(o.aval.shape), o.aval.dtype)
        self.account(eqn, ins, env[eqn.outvars[0]])

    def fields(self, eqn: Any, ins: list[_Info]) -> dict:
        prim, p = eqn.primitive.name, eqn.params
        out_shape = tuple(eqn.outvars[0].aval.shape)
        x = ins[0]
        if prim == "conv_general_dilated":
            if not x.data:
                return {}
            dn = p["dimension_numbers"]
            lhs, rhs, out = dn.lhs_spec, dn.rhs_spec, dn.out_spec
            kshape = eqn.invars[1].aval.shape
            res = {}
            if lhs[0] in x.fields:
                res[out[0]] = x.fields[lhs[0]]
            for i in range(len(lhs) - 2):
                if lhs[2 + i] in x.fields:
                    res[out[2 + i]] = _window(
                        x.fields[lhs[2 + i]],
                        kshape[rhs[2 + i]],
                        p["window_strides"][i],
                        p["padding"][i][0],
                        p["rhs_dilation"][i],
                        p["lhs_dilation"][i],
                    )
            return res
        if prim in _POOL:
            res = {}
            for a, f in x.fields.items():
                res[a] = _window(
                    f,
                    p["window_dimensions"][a],
                    p["window_strides"][a],
                    p["padding"][a][0],
                    p["window_dilation"][a],
                    p["base_dilation"][a],
                )
            return res
        if prim == "dot_general":
            (lc, rc), (lb, rb) = p["dimension_numbers"]
            nb = len(lb)
            res: dict = {}
            for side, (info, c, b) in enumerate(((ins[0], lc, lb), (ins[1], rc, rb))):
                if not info.data:
                    continue
                free = [a for a in range(len(info.shape)) if a not in c and a not in b]
                offset = nb + (0 if side == 0 else len(ins[0].shape) - len(lc) - nb)
                amap = {a: b.index(a) for a in b} | {a: offset + k for k, a in enumerate(free)}
                for a, f in info.fields.items():
                    if a in amap:
                        res.setdefault(amap[a], []).append(f)
            return {a: _union(fs) for a, fs in res.items()}
        if prim in _REDUCE:
            axes = tuple(p["axes"])
            keep = [a for a in range(len(x.shape)) if a not in axes]
            return {keep.index(a): f for a, f in x.fields.items() if a in keep}
        if prim == "broadcast_in_dim":
            bd = p["broadcast_dimensions"]
            return {bd[a]: f for a, f in x.fields.items() if x.shape[a] == out_shape[bd[a]]}
        if prim == "reshape":
            amap = _reshape_axes(x.shape, out_shape)
            return {amap[a]: f for a, f in x.fields.items() if a in amap}
        if prim == "squeeze":
            keep = [a for a in range(len(x.shape)) if a not in p["dimensions"]]
            return {keep.index(a): f for a, f in x.fields.items() if a in keep}
        if prim == "transpose":
            perm = p["permutation"]
            return {perm.index(a): f for a, f in x.fields.items()}
        if prim == "pad":
            res = {}
            for a, f in x.fields.items():
                lo = p["padding_config"][a][0]
                res[a] = (f[0], f[1] - lo * f[0], f[2] - lo * f[0])
            return res
        if prim == "slice":
            strides = p["strides"] or (1,) * len(x.shape)
            res = {}
            for a, f in x.fields.items():
                st = p["start_indices"][a]
                res[a] = (f[0] * strides[a], f[1] + st * f[0], f[2] + st * f[0])
            return res
        if prim == "concatenate":
            dim = p["dimension"]
            res = {}
            for info in ins:
                if info.data:
                    for a, f in info.fields.items():
                        if a != dim:
                            res.setdefault(a, []).append(f)
            return {a: _union(fs) for a, fs in res.items()}
        # elementwise (with size-1 broadcasting) or unknown: axes whose size is unchanged
        res = {}
        for info in ins:
            if info.data and len(info.shape) == len(out_shape):
                for a, f in info.fields.items():
                    if info.shape[a] == out_shape[a]:
                        res.setdefault(a, []).append(f)
        return {a: _union(fs) for a, fs in res.items()}

    # -- costs and rows ----------------------------------------------------------------------

    def cost(self, eqn: Any, ins: list[_Info]) -> int:
        prim, p, conv = eqn.primitive.name, eqn.params, self.convention
        out = eqn.outvars[0].aval
        n_out = _prod(out.shape)
        if prim == "conv_general_dilated":
            dn = p["dimension_numbers"]
            w = eqn.invars[1].aval.shape
            c = w[dn.rhs_spec[1]]
            taps = _prod(w[a] for a in dn.rhs_spec[2:])
            macs = n_out * c * taps
            if conv == "macs":
                return macs
            if conv == "flops":
                return 2 * macs
            b, o = out.shape[dn.out_spec[0]], out.shape[dn.out_spec[1]]
            positions = n_out // (b * o)
            return b * o * (c * positions * (2 * taps - 1) + (c - 1))
        if prim == "dot_general":
            (lc, _), _ = p["dimension_numbers"]
            c = _prod(eqn.invars[0].aval.shape[a] for a in lc)
            return {"macs": n_out * c, "flops": 2 * n_out * c, "seed": n_out * (2 * c - 1)}[conv]
        if conv == "macs" or prim in _FREE:
            return 0
        if prim in _POOL:
            return n_out * (_prod(p["window_dimensions"]) - 1)
        if prim in _REDUCE:
            return _prod(eqn.invars[0].aval.shape) - n_out
        return n_out * _ELEMENTWISE_COST.get(prim, 1) * len(eqn.outvars)

    def label(self, eqn: Any, ins: list[_Info]) -> str:
        prim, p = eqn.primitive.name, eqn.params
        if prim == "conv_general_dilated":
            dn = p["dimension_numbers"]
            w = eqn.invars[1].aval.shape
            text = "conv " + "×".join(str(w[a]) for a in dn.rhs_spec[2:])
            s = p["window_strides"]
            if any(v != 1 for v in s):
                text += "/" + "×".join(map(str, s)) if len(set(s)) > 1 else f"/{s[0]}"
            if any(v != 1 for v in p["rhs_dilation"]):
                text += " d" + "×".join(map(str, p["rhs_dilation"]))
            if p["feature_group_count"] != 1:
                text += f" g{p['feature_group_count']}"
            if any(v != 1 for v in p["lhs_dilation"]):
                text = "conv_transpose" + text[4:]
            return text
        if prim in _POOL:
            kind = {"reduce_window_max": "max_pool", "reduce_window_min": "min_pool"}.get(
                prim, "sum_pool"
            )
            win = [k for k in p["window_dimensions"] if k != 1] or [1]
            st = [s for s in p["window_strides"] if s != 1]
            return f"{kind} " + "×".join(map(str, win)) + (f"/{st[0]}" if st else "")
        if prim == "dot_general":
            return "dense" if not all(i.data for i in ins) else "dot"
        if prim == "add" and sum(i.data for i in ins) == 2:
            return "add"
        return prim

    def tag(self, eqn: Any, ins: list[_Info]) -> str | None:
        prim = eqn.primitive.name
        if prim in _FREE:
            return None
        lit = [v.val for v in eqn.invars if isinstance(v, _jcore.Literal)]
        params = any(not i.data and i.sources for i in ins)
        if prim == "max" and lit and np.all(np.asarray(lit[0]) == 0):
            return "relu"
        if prim in ("add", "sub", "mul", "div") and params:
            return {"add": "bias", "sub": "shift", "mul": "scale", "div": "scale"}[prim]
        if prim in ("mul", "div") and lit:
            return "mean"
        return {"logistic": "sigmoid"}.get(prim, prim)

    def account(self, eqn: Any, ins: list[_Info], out: _Info) -> None:
        prim = eqn.primitive.name
        new = set()
        for i in ins:
            if not i.data:
                new |= set(i.sources) - self.used
        self.used |= new
        trainable = sum(self.sources[s][0] for s in new if self.sources[s][1])
        frozen = sum(self.sources[s][0] for s in new if not self.sources[s][1])
        cost = self.cost(eqn, ins)
        data = [i for i in ins if i.data]
        layer = prim in ("conv_general_dilated", "dot_general") or prim in _POOL
        layer = layer or prim in _REDUCE or prim == "concatenate"
        cur = self.current
        if not layer and cur is not None and len(data) == 1 and data[0] is cur["end"]:
            tag = self.tag(eqn, ins)
            if tag is not None and (not cur["tags"] or cur["tags"][-1] != tag):
                cur["tags"].append(tag)
        else:
            cur = {"op": self.label(eqn, ins), "tags": [], "params": 0, "frozen": 0, "flops": 0}
            tag = None if layer or cur["op"] == "add" else self.tag(eqn, ins)
            if tag is not None:  # a row that starts with an elementwise op: name it by its tags
                cur["op"], cur["tags"] = "", [tag]
            self.rows.append(cur)
            self.current = cur
        cur["end"] = out
        if prim not in _FREE or "shown" not in cur:
            cur["shown"] = out
        cur["params"] += trainable
        cur["frozen"] += frozen
        cur["flops"] += cost

    def finish(self) -> tuple[SummaryRow, ...]:
        rows = []
        for r in self.rows:
            end, tags, op = r["shown"], list(r["tags"]), r["op"]
            if {"shift", "scale", "bias"} <= set(tags):
                i = tags.index("shift")
                tags = (
                    tags[:i] + ["bn"] + [t for t in tags[i:] if t not in ("shift", "scale", "bias")]
                )
            if "mean" in tags and (op == "reduce_sum" or op.startswith("sum_pool")):
                op = "mean" if op == "reduce_sum" else "avg_pool" + op[len("sum_pool") :]
                tags.remove("mean")
            if tags:
                op = op + " +" + "+".join(tags) if op else "+".join(tags)
            fields = [end.fields[a] for a in sorted(end.fields)]
            rows.append(
                SummaryRow(
                    op=op,
                    shape=end.shape,
                    dtype=str(jnp.dtype(end.dtype)),
                    receptive_field=tuple(f[2] - f[1] + 1 for f in fields) if fields else None,
                    jump=tuple(f[0] for f in fields) if fields else None,
                    start=tuple((f[1] + f[2]) / 2 for f in fields) if fields else None,
                    params=r["params"],
                    non_trainable=r["frozen"],
                    flops=r["flops"],
                    bytes=_prod(end.shape) * jnp.dtype(end.dtype).itemsize,
                )
            )
        return tuple(rows)


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def summary(
    fn,
    *example_args,
    convention="macs",
    data_argnum=0,
    non_trainable_argnums=(),
    spatial_axes=None,
    print_fn=print,
):
    r"""Per-layer table of any JAX function, read from its jaxpr: shapes, fields, params, cost.

    ``fn`` is traced with :func:`jax.make_jaxpr` on ``example_args`` (arrays or
    ``jax.ShapeDtypeStruct``, so nothing is computed or allocated). A dataflow over the jaxpr
    variables, descending into ``jit`` / ``custom_jvp`` / ``custom_vjp`` calls, follows the
    *data path* (the variables computed from ``example_args[data_argnum]``):

    * receptive field: each data variable carries, per spatial axis, the jump and the
      interval ``[lo, hi]`` of input pixels its first unit sees; a convolution or pooling
      window composes as in :func:`receptive_field`, and where paths join (a residual
      ``add``) the intervals are united — the largest field over paths, with misaligned
      branches handled — so size ``= hi − lo + 1``;
    * parameters: every other input array (and every closed-over constant) reaching the data
      path — conv and dense weights, biases, BN scales and statistics — is counted once,
      at the layer that uses it first; arrays in ``non_trainable_argnums`` are reported
      apart;
    * cost: ``conv_general_dilated`` and ``dot_general`` as in :func:`conv_flops`; under
      ``"flops"`` and ``"seed"`` also pooling windows (``K − 1`` per output), reductions,
      and one operation per element of every other elementwise op (4 for ``logistic``);
      under ``"macs"`` only the multiply–accumulates;
    * rows: each convolution, dense layer, pooling window or reduction starts a row and the
      elementwise ops that continue its output (bias, BN, activation) join it; an op whose
      input is not the current row's output (a residual add) starts a new row.

    ``"flops"`` equals XLA's ``cost_analysis()`` ``flops + transcendentals`` for such
    networks, less XLA's saving on padding taps (see :func:`conv_flops`).

    Args:
      fn: any function of arrays (pytrees allowed); for a flax NNX model trace
        ``lambda params, stats, x: nnx.merge(graphdef, params, stats)(x)`` (see
        ``dlref.models.model_summary``) or close over a concrete model.
      *example_args: the arguments, arrays or ``jax.ShapeDtypeStruct``.
      convention: ``"macs"``, ``"flops"`` or ``"seed"``.
      data_argnum: which argument is the input whose path is followed.
      non_trainable_argnums: arguments holding non-trainable state (BN running statistics).
      spatial_axes: the spatial axes of the data argument; default channels-last
        ``1 .. ndim − 2`` (none for rank < 3).
      print_fn: called with the formatted table; ``None`` to print nothing.

    Returns:
      A :class:`Summary` with ``rows`` (:class:`SummaryRow`) and ``totals``
      (:class:`SummaryTotals`); ``str(summary)`` is the table.

    Raises:
      ValueError: no array inputs, a bad ``data_argnum`` or an unknown convention.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax import lax
      >>> w = jnp.ones((3, 3, 1, 4))
      >>> f = lambda x: lax.conv_general_dilated(x, w, (1, 1), "VALID",
      ...                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
      >>> t = summary(f, jnp.ones((1, 8, 8, 1)), print_fn=None).totals
      >>> (t.params, t.flops, t.receptive_field)      # 36 weights, 6·6·4·9 MACs, 3×3 field
      (36, 1296, (3, 3))
    """
    op = "summary"
    _check_convention(convention, op)
    if not example_args:
        raise ValueError(f"{op}: fn has no array inputs; pass example arguments")
    if not isinstance(data_argnum, int) or not 0 <= data_argnum < len(example_args):
        raise ValueError(
            f"{op}: data_argnum={data_argnum!r} must index the {len(example_args)} example "
            f"arguments"
        )
    leaves_per_arg = [jax.tree.leaves(a) for a in example_args]
    data_leaves = leaves_per_arg[data_argnum]
    if not data_leaves or not all(_is_array(x) for x in data_leaves):
        raise ValueError(
            f"{op}: fn has no array inputs: argument {data_argnum} must be an array or a "
            f"pytree of arrays, got {example_args[data_argnum]!r}"
        )
    closed = jax.make_jaxpr(fn)(*example_args)
    jaxpr = closed.jaxpr
    tracer = _Tracer(convention)
    env: dict = {}
    for cv in jaxpr.constvars:
        env[cv] = tracer.new_source(cv.aval)
    invars = iter(jaxpr.invars)
    for argnum, leaves in enumerate(leaves_per_arg):
        for _ in leaves:
            v = next(invars)
            if argnum == data_argnum:
                nd = len(v.aval.shape)
                axes = range(1, nd - 1) if spatial_axes is None else spatial_axes
                fields = {a: (1, 0, 0) for a in axes}
                env[v] = _Info(True, fields, frozenset(), tuple(v.aval.shape), v.aval.dtype)
            else:
                env[v] = tracer.new_source(v.aval, argnum not in non_trainable_argnums)
    tracer.run(jaxpr, env)
    rows = tracer.finish()
    spatial = [r for r in rows if r.receptive_field is not None]
    totals = SummaryTotals(
        params=sum(r.params for r in rows),
        non_trainable=sum(r.non_trainable for r in rows),
        flops=sum(r.flops for r in rows),
        activation_bytes=sum(r.bytes for r in rows),
        receptive_field=spatial[-1].receptive_field if spatial else None,
        jump=spatial[-1].jump if spatial else None,
        convention=convention,
    )
    result = Summary(rows, totals)
    if print_fn is not None:
        print_fn(str(result))
    return result
