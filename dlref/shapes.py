"""Shape arithmetic of convolutional networks, as closed formulas on Python ints.

* output sizes of convolution, pooling and transposed convolution
  (:func:`conv_output_size`, :func:`conv_transpose_output_size`);
* receptive fields of a stack of layers (:func:`receptive_field`: size, jump, start);
* parameter counts (:func:`conv_params`) and costs (:func:`conv_flops`, :func:`pool_flops`,
  :func:`activation_flops`, :func:`batch_norm_flops`) under the conventions ``"macs"``,
  ``"flops"`` and ``"seed"`` (:data:`CONVENTIONS`);
* activation memory (:func:`activation_bytes`).

:func:`dlref.summary` (in :mod:`dlref.model_summary`) applies these per layer to the jaxpr of
any JAX function. This module sits at the bottom of dlref's dependency graph (only ``_checks``
below it), so the ops and the kernels can all use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp

from dlref._checks import check_bool, check_choice, check_int

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
    "CONVENTIONS",
]


def _is_seq(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str)


def _pad_pair(p: Any, op: str) -> tuple[int, int]:
    if _is_seq(p):
        if len(p) != 2:
            raise ValueError(f"{op}: padding must be an int or a (lo, hi) pair, got {p!r}")
        lo, hi = p
    else:
        lo = hi = p
    return check_int(lo, "padding", op, minimum=0), check_int(hi, "padding", op, minimum=0)


def _per_dim(n: Sequence[int], value: Any, name: str, op: str) -> list:
    """Broadcast a scalar to one entry per dimension; a tuple must have one per dimension."""
    m = len(n)
    if not _is_seq(value):
        return [value] * m
    if len(value) != m:
        raise ValueError(f"{op}: {name} must have one entry per dimension ({m}), got {value!r}")
    return list(value)


def _conv_output_size_1d(n, k, s, p, d, ceil_mode, op) -> int:
    n = check_int(n, "input size n", op, minimum=1)
    k = check_int(k, "kernel size k", op, minimum=1)
    s = check_int(s, "stride s", op, minimum=1)
    d = check_int(d, "dilation d", op, minimum=1)
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
    PyTorch's ``Conv*d`` / ``MaxPool*d`` / ``AvgPool*d``. The study guide writes the first formula
    with ``p`` as the *total* padding and the summary formula with ``p`` per side (erratum 1,
    docs/errata.md); here ``p`` is per side, or an explicit ``(lo, hi)`` pair.

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
      TypeError: non-integer arguments; ``ceil_mode`` not a bool.

    Example:
      >>> conv_output_size(224, 7, s=2, p=3)   # ResNet stem
      112
      >>> conv_output_size(5, 2, s=2, ceil_mode=True)
      3

    References:
      Dumoulin and Visin, "A guide to convolution arithmetic for deep learning", 2016,
      https://arxiv.org/abs/1603.07285.
    """
    return _conv_output_size(n, k, s, p, d, ceil_mode, "conv_output_size")


def _conv_output_size(n, k, s, p, d, ceil_mode, op):
    """:func:`conv_output_size` with its errors named after ``op`` (the public caller)."""
    ceil_mode = check_bool(ceil_mode, "ceil_mode", op)
    if not _is_seq(n):
        return _conv_output_size_1d(n, k, s, p, d, ceil_mode, op)
    n = list(n)
    ks, ss, ds = (_per_dim(n, v, nm, op) for v, nm in ((k, "k"), (s, "s"), (d, "d")))
    ps = _per_dim(n, p, "p", op)
    return tuple(
        _conv_output_size_1d(*args, ceil_mode, op) for args in zip(n, ks, ss, ps, ds, strict=True)
    )


def _conv_transpose_output_size_1d(n, k, s, p, output_padding, d, op) -> int:
    n = check_int(n, "input size n", op, minimum=1)
    k = check_int(k, "kernel size k", op, minimum=1)
    s = check_int(s, "stride s", op, minimum=1)
    d = check_int(d, "dilation d", op, minimum=1)
    p = check_int(p, "padding p", op, minimum=0)
    op_ = check_int(output_padding, "output_padding", op, minimum=0)
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
    ``s`` input sizes that a strided convolution maps to the same ``n``. The study guide's
    ``(n − 1)·s + k`` is the special case ``p = 0, d = 1, output_padding = 0``
    (erratum 2, docs/errata.md).

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
    k = check_int(k, f"kernel of layer {i}", op, minimum=1)
    s = check_int(s, f"stride of layer {i}", op, minimum=1)
    d = check_int(d, f"dilation of layer {i}", op, minimum=1)
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

    from ``r_0 = j_0 = 1`` and ``start_0 = 0``. This is the study guide's top-down recursion
    ``F = (F' − 1)·stride + d·(k − 1) + 1`` run bottom-up; the study guide's ``outFromIn`` computes
    the *output size and total stride* instead and is not a receptive field (erratum 4,
    docs/errata.md). For branching networks use :func:`summary`, which takes the union over paths.

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
    check_choice(convention, CONVENTIONS, "convention", op)


def _kernel_dims(k: Any, op: str, ndim: int | None = None) -> tuple[int, ...]:
    """An int kernel is square (``ndim`` dims, 2 unless given); a tuple gives one per dim."""
    if _is_seq(k):
        ks = tuple(k)
        if ndim is not None and len(ks) != ndim:
            raise ValueError(f"{op}: kernel size k must have {ndim} entries, got {k!r}")
    else:
        ks = (k,) * (2 if ndim is None else ndim)
    return tuple(check_int(v, "kernel size k", op, minimum=1) for v in ks)


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
    The study guide's ``C·K·K·O + 3·O`` counts a bias *and* BN's γ, β — frameworks usually drop the
    bias before BN (it is cancelled by the mean subtraction) — and leaves out BN's ``2·O``
    running statistics and the groups (erratum 5, docs/errata.md).

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
      TypeError: non-integer sizes; ``bias``, ``batch_norm`` or ``separable`` not a bool (a
        truthy string such as ``"no"`` is not taken for ``True``).

    Example:
      >>> conv_params(64, 128, 3).trainable            # 64·9·128 + 128
      73856
      >>> p = conv_params(64, 128, 3, bias=False, batch_norm=True)
      >>> (p.trainable, p.non_trainable)               # + γ, β ; running mean, var
      (73984, 256)
    """
    op = "conv_params"
    bias = check_bool(bias, "bias", op)
    batch_norm = check_bool(batch_norm, "batch_norm", op)
    separable = check_bool(separable, "separable", op)
    c = check_int(c_in, "input channels c_in", op, minimum=1)
    o = check_int(c_out, "output channels c_out", op, minimum=1)
    ks = _kernel_dims(k, op)
    g = check_int(groups, "groups", op, minimum=1)
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

    and the study guide's count (its 计算量 steps 1–5),

    .. math::
        \text{seed} = N\, O\, \big(\tfrac{C}{g}\, H' W' (2K^2 - 1) + (C/g - 1)\big).

    ``"flops"`` counts a multiply and an add per tap (XLA's and most papers' convention);
    without a bias the exact count is ``N·O·H'W'·(2·C·K²/g − 1)`` (``C·K²/g − 1`` additions
    per output), and a bias adds the one back. The study guide adds the ``C − 1`` partial sums once
    per output *map* instead of once per output *element* (erratum 7, docs/errata.md); it is
    computed here with the correct output sizes (the study guide's step 2 writes ``H`` where ``W``
    belongs, erratum 6 (docs/errata.md)) and ignores the bias, as the study guide does.

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
      TypeError: non-integer sizes; ``bias``, ``separable`` or ``count_padding`` not a bool.

    Example:
      >>> conv_flops(3, 64, 7, 224, stride=2, padding=3)         # ResNet stem, MACs
      118013952
      >>> conv_flops(3, 64, 7, 224, stride=2, padding=3, convention="flops", bias=False)
      236027904
    """
    op = "conv_flops"
    _check_convention(convention, op)
    bias = check_bool(bias, "bias", op)
    separable = check_bool(separable, "separable", op)
    count_padding = check_bool(count_padding, "count_padding", op)
    c = check_int(c_in, "input channels c_in", op, minimum=1)
    o = check_int(c_out, "output channels c_out", op, minimum=1)
    b = check_int(batch, "batch", op, minimum=1)
    g = check_int(groups, "groups", op, minimum=1)
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
        out = _conv_output_size(sizes, ks, strides, pads, dils, False, op)
        return dw + conv_flops(c, o, (1,) * m, out, **common)
    if c % g or o % g:
        raise ValueError(
            f"{op}: input channels C={c} and output channels O={o} must be divisible by groups={g}"
        )
    outs = _conv_output_size(sizes, ks, strides, pads, dils, False, op)
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
    (the study guide counts only convolutions) give the count above. The max count equals XLA's
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
      TypeError: non-integer sizes; ``ceil_mode`` not a bool.

    Example:
      >>> pool_flops(64, 3, 112, stride=2, padding=1)   # ResNet max pool: 64·56·56·8
      1605632
    """
    op = "pool_flops"
    _check_convention(convention, op)
    check_choice(kind, _POOL_KINDS, "kind", op)
    c = check_int(channels, "channels", op, minimum=1)
    b = check_int(batch, "batch", op, minimum=1)
    ks = _kernel_dims(k, op, len(size) if _is_seq(size) else None)
    m = len(ks)
    sizes = tuple(size) if _is_seq(size) else (size,) * m
    strides = ks if stride is None else stride
    outs = _conv_output_size(sizes, ks, strides, padding, dilation, ceil_mode, op)
    n_out = b * c * _prod(outs)
    if convention == "macs":
        return 0
    return n_out * (_prod(ks) - 1) + (n_out if kind == "avg" else 0)


def _numel(shape: Any, op: str) -> int:
    if _is_seq(shape):
        return _prod(check_int(v, "shape entry", op, minimum=0) for v in shape)
    return check_int(shape, "number of elements", op, minimum=0)


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
    check_choice(kind, tuple(_ACTIVATION_OPS), "kind", op)
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
      TypeError: ``train`` not a bool.

    Example:
      >>> batch_norm_flops((1, 56, 56, 64))
      602112
    """
    op = "batch_norm_flops"
    _check_convention(convention, op)
    train = check_bool(train, "train", op)
    n = _numel(shape, op)
    return 0 if convention == "macs" else (6 if train else 3) * n


def activation_bytes(shape, *, dtype="float32"):
    r"""Memory of a feature map (or of a list of them: a whole network) in bytes.

    .. math:: \text{bytes} = \textstyle\prod shape \cdot \text{itemsize}(dtype)

    Feature maps, not weights, dominate training memory: each layer's output is kept for the
    backward pass (the study guide's note under 参数量). ``summary`` reports this per layer.

    Args:
      shape: a shape tuple, or a list of shape tuples (summed).
      dtype: anything ``numpy.dtype`` accepts (``"float32"``, ``jnp.bfloat16``, ...).

    Returns:
      Bytes, a Python int.

    Raises:
      ValueError: negative shape entries.
      TypeError: non-integer shape entries; ``dtype`` not a dtype.

    Example:
      >>> activation_bytes((1, 112, 112, 64))             # ResNet stem output, float32
      3211264
      >>> activation_bytes([(2, 3), (4,)], dtype="bfloat16")
      20
    """
    op = "activation_bytes"
    try:
        itemsize = jnp.dtype(dtype).itemsize
    except (TypeError, ValueError) as e:
        raise TypeError(f"{op}: dtype must be a NumPy/JAX dtype, got {dtype!r}") from e
    if _is_seq(shape) and len(shape) and all(_is_seq(s) for s in shape):
        return sum(_numel(s, op) * itemsize for s in shape)
    return _numel(shape, op) * itemsize
