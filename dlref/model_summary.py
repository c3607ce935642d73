r"""``summary``: a per-layer table (shapes, receptive fields, parameters, FLOPs) of any JAX
function, read from its jaxpr.

The arithmetic it applies per layer lives in :mod:`dlref.shapes`; this module walks the jaxpr
once, in order, with one rule per primitive (:data:`_RULES`):

* a *value* (:class:`_Value`) is what the walk knows about one jaxpr variable: for the data
  path (everything computed from the input), per axis, the input pixels its first unit sees;
  for everything else, which parameter arrays it is made of;
* a *rule* (:class:`_Rule`) says how a primitive moves that knowledge (its ``axes``), what it
  costs, how it is labelled, and its role: ``free`` ops move or relabel data, ``layer`` ops
  (convolutions, dense layers, pooling windows, reductions) start a table row, ``elementwise``
  ops join the row whose output they continue (bias, BN, activation), ``call`` ops are
  descended into (``jit``, ``checkpoint``, ``custom_jvp``, ``custom_vjp``);
* a *window* is a layer written as a loop over kernel taps — strided slices of one padded
  input, combined by ``+`` or ``max`` (dlref's reference convolution and its pooling), or
  stacked and contracted (im2col). The slices are *taps* of their input; the ops that
  combine taps of the same input form one row (:class:`_Window`), labelled and costed from
  the taps it combined, as the one-primitive forms (``lax.conv_general_dilated``,
  ``lax.reduce_window``) are.

A field is tracked per *atom* of an axis (a reshape may merge axes, as im2col merges the
batch and spatial axes into the rows of a matrix, and split them back), so it survives
flattening and unflattening.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core

from dlref._checks import check_choice
from dlref.shapes import CONVENTIONS, conv_flops

__all__ = ["summary", "Summary", "SummaryRow", "SummaryTotals"]


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


# --------------------------------------------------------------------------------------------
# what the walk knows about a variable


class _Span(NamedTuple):
    """The input pixels unit 0 of a spatial axis sees, ``[lo, hi]``, and the ``jump`` (input
    pixels) between neighbouring units; a transposed convolution makes them fractional."""

    jump: float
    lo: float
    hi: float


_TAPS = "taps"  # the span of an axis that enumerates a window's taps (im2col's patch axis)

# An axis is a tuple of atoms ``(size, span)``, in row-major order, whose sizes multiply to the
# axis size (``()`` for a size-1 axis a reshape made); ``span`` is a _Span (a spatial axis of
# the input, composed through the layers so far), _TAPS, or None (batch, channels).
_Atom = tuple[int, Any]


@dataclasses.dataclass(frozen=True)
class _Tap:
    """A value made of window taps: strided slices of ``base`` (see the module docstring).

    ``keys`` are the taps' offsets into ``base``, one tuple (one int per spatial span) per
    tap; ``single`` is one tap not yet combined with the others or consumed by a layer."""

    base: _Value
    keys: frozenset
    single: bool
    stride: tuple


@dataclasses.dataclass(frozen=True, eq=False)
class _Value:
    """What the walk knows about one jaxpr variable (compared by identity)."""

    shape: tuple[int, ...]
    dtype: Any = None
    axes: tuple[tuple[_Atom, ...], ...] | None = None  # on the data path: atoms per axis
    sources: frozenset = frozenset()  # off it: the parameter arrays it is computed from
    const: float | None = None  # off it: a known uniform value (x + 0 is no layer)
    row: _Row | None = None  # the row that computed it ...
    stamp: int = -1  # ... and which of that row's outputs (row.stamp when computed)
    view: bool = False  # that output itself, reshaped or cast (no pad, no slice)
    tap: _Tap | None = None
    lhs_dilated: bool = False  # zeros interleaved (a transposed convolution's input)

    @property
    def data(self) -> bool:
        return self.axes is not None

    def spans(self) -> list[_Span]:
        return [s for axis in self.axes or () for _, s in axis if isinstance(s, _Span)]

    def has_taps_axis(self) -> bool:
        return any(s == _TAPS for axis in self.axes or () for _, s in axis)

    def spans_apart(self) -> bool:
        """Every spatial span alone on its axis (not merged with others by a reshape)."""
        return all(
            sum(1 for n, s in axis if n > 1 or isinstance(s, _Span)) <= 1
            for axis in self.axes or ()
            if any(isinstance(s, _Span) for _, s in axis)
        )

    def is_open(self) -> bool:
        """Still assembling a window: a lone tap, or taps stacked along an axis."""
        return self.tap is not None and (self.tap.single or self.has_taps_axis())


def _fresh(shape) -> tuple[tuple[_Atom, ...], ...]:
    return tuple(((n, None),) for n in shape)


def _union_spans(spans: list) -> Any:
    real = [s for s in spans if isinstance(s, _Span)]
    if real:
        return _Span(max(s.jump for s in real), min(s.lo for s in real), max(s.hi for s in real))
    return _TAPS if _TAPS in spans else None


def _union_axis(candidates: list[tuple[_Atom, ...]], size: int) -> tuple[_Atom, ...]:
    """The atoms of one output axis that several inputs feed (a join): spans united."""
    if not candidates:
        return ((size, None),)
    sizes = [tuple(n for n, _ in c) for c in candidates]
    same = [c for c, s in zip(candidates, sizes) if s == sizes[0]]
    return tuple((n, _union_spans([c[i][1] for c in same])) for i, (n, _) in enumerate(same[0]))


def _axis_span(axis: tuple[_Atom, ...]) -> _Span | None:
    """The span of an axis that is one spatial axis (other atoms of size 1), else None."""
    spans = [s for _, s in axis if isinstance(s, _Span)]
    big = [n for n, _ in axis if n > 1]
    return spans[0] if len(spans) == 1 and len(big) <= 1 else None


def _div(a: float, b: int) -> float:
    """``a / b``, an int when exact (fields stay ints unless a transposed conv halves them)."""
    return a // b if a % b == 0 else a / b


def _window(f: _Span, k: int, s: int, lo: int, rd: int = 1, ld: int = 1) -> _Span:
    """Compose a window (kernel k, stride s, left pad lo, rhs and lhs dilations) onto f."""
    j, a, b = f
    if ld == 1:
        return _Span(j * s, a - lo * j, b + (rd * (k - 1) - lo) * j)
    # lhs (base) dilation, i.e. a transposed convolution: continuous-coordinate bound
    return _Span(_div(j * s, ld), a - _div(lo * j, ld), b + _div((rd * (k - 1) - lo) * j, ld))


# --------------------------------------------------------------------------------------------
# one rule per primitive: how its output's axes follow from its inputs'


def _axes_elementwise(eqn, ins) -> tuple:
    """Same-shape ops (and unknown ones): each output axis joins the input axes of its size."""
    out = eqn.outvars[0].aval.shape
    res = []
    for a, n in enumerate(out):
        cands = [v.axes[a] for v in ins if v.data and len(v.shape) == len(out) and v.shape[a] == n]
        res.append(_union_axis(cands, n))
    return tuple(res)


def _axes_conv(eqn, ins) -> tuple:
    x, p = ins[0], eqn.params
    out = eqn.outvars[0].aval.shape
    res = list(_fresh(out))
    if not x.data:
        return tuple(res)
    dn = p["dimension_numbers"]
    lhs, rhs, o = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    kshape = eqn.invars[1].aval.shape
    res[o[0]] = x.axes[lhs[0]]
    for i in range(len(lhs) - 2):
        f = _axis_span(x.axes[lhs[2 + i]])
        if f is not None:
            f = _window(f, kshape[rhs[2 + i]], p["window_strides"][i], p["padding"][i][0],
                        p["rhs_dilation"][i], p["lhs_dilation"][i])  # fmt: skip
            res[o[2 + i]] = ((out[o[2 + i]], f),)
    return tuple(res)


def _axes_reduce_window(eqn, ins) -> tuple:
    x, p = ins[0], eqn.params
    out = eqn.outvars[0].aval.shape
    res = []
    for a, n in enumerate(out):
        f = _axis_span(x.axes[a])
        moves = (p["window_dimensions"][a], p["window_strides"][a], p["padding"][a][0],
                 p["window_dilation"][a], p["base_dilation"][a])  # fmt: skip
        if f is not None:
            res.append(((n, _window(f, *moves)),))
        elif moves == (1, 1, 0, 1, 1) and p["padding"][a][1] == 0:
            res.append(x.axes[a])
        else:
            res.append(((n, None),))
    return tuple(res)


def _axes_dot(eqn, ins) -> tuple:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    ranks = [len(v.aval.shape) for v in eqn.invars]
    out = eqn.outvars[0].aval.shape
    res: list[list] = [[] for _ in out]
    for side, (info, c, b) in enumerate(((ins[0], lc, lb), (ins[1], rc, rb))):
        if not info.data:
            continue
        free = [a for a in range(ranks[side]) if a not in c and a not in b]
        offset = len(lb) + (0 if side == 0 else ranks[0] - len(lc) - len(lb))
        amap = {a: b.index(a) for a in b} | {a: offset + k for k, a in enumerate(free)}
        for a, j in amap.items():
            res[j].append(info.axes[a])
    return tuple(_union_axis(c, n) for c, n in zip(res, out))


def _axes_reduce(eqn, ins) -> tuple:
    x, axes = ins[0], eqn.params["axes"]
    return tuple(ax for a, ax in enumerate(x.axes) if a not in axes)


def _axes_broadcast(eqn, ins) -> tuple:
    x, bd = ins[0], eqn.params["broadcast_dimensions"]
    out = eqn.outvars[0].aval.shape
    res = list(_fresh(out))
    for a, j in enumerate(bd):
        if x.shape[a] == out[j]:
            res[j] = x.axes[a]
    return tuple(res)


def _axes_reshape(eqn, ins) -> tuple:
    """Regroup the atoms row-major into the new sizes.

    A reshape that only inserts or removes size-1 axes keeps every axis (left-aligned). Any
    other regroups the atoms; an atom that must be split loses its span (a space-to-depth
    reshape splits a spatial axis: its field is no longer one axis). A spatial axis of size
    1 that has no size-1 axis to go to joins the next axis (a flatten)."""
    x, out = ins[0], eqn.outvars[0].aval.shape
    if [n for n in x.shape if n != 1] == [n for n in out if n != 1]:
        return _reshape_unit_axes(x, out)
    atoms = [a for axis in x.axes for a in axis]
    res, i = [], 0
    for n in out:
        group, p = [], 1
        if n == 1 and i < len(atoms) and atoms[i][0] == 1:  # a size-1 axis to a size-1 axis
            group.append(atoms[i])
            i += 1
        while p < n:
            if i >= len(atoms):
                return _fresh(out)
            size, span = atoms[i]
            if n % (p * size) == 0:
                group.append((size, span))
                p, i = p * size, i + 1
            elif size % (n // p) == 0:  # split the atom: its high part here, the rest next
                group.append((n // p, None))
                atoms[i] = (size // (n // p), None)
                p = n
            else:
                return _fresh(out)
        res.append(tuple(group))
    rest = [a for a in atoms[i:] if a[1] is not None]
    if rest and res:  # trailing size-1 spatial atoms join the last axis
        res[-1] = res[-1] + tuple(rest)
    return tuple(res)


def _reshape_unit_axes(x: _Value, out) -> tuple:
    res, i, rank = [], 0, len(x.shape)
    for n in out:
        if n == 1:
            if i < rank and x.shape[i] == 1:
                res.append(x.axes[i])
                i += 1
            else:
                res.append(())
            continue
        spans = []  # size-1 input axes left over before this one: their fields come along
        while x.shape[i] == 1:
            spans += [a for a in x.axes[i] if a[1] is not None]
            i += 1
        res.append((*spans, *x.axes[i]))
        i += 1
    rest = [a for axis in x.axes[i:] for a in axis if a[1] is not None]
    if rest and res:
        res[-1] = res[-1] + tuple(rest)
    return tuple(res)


def _axes_squeeze(eqn, ins) -> tuple:
    """Drop the size-1 axes; a field (or taps marker) on one moves to the next axis kept."""
    dims, res, carry = eqn.params["dimensions"], [], []
    for a, axis in enumerate(ins[0].axes):
        if a in dims:
            carry += [atom for atom in axis if atom[1] is not None]
        else:
            res.append((*carry, *axis))
            carry = []
    if carry and res:
        res[-1] = res[-1] + tuple(carry)
    return tuple(res)


def _axes_transpose(eqn, ins) -> tuple:
    return tuple(ins[0].axes[a] for a in eqn.params["permutation"])


def _axes_pad(eqn, ins) -> tuple:
    out = eqn.outvars[0].aval.shape
    res = []
    for a, (lo, hi, interior) in enumerate(eqn.params["padding_config"]):
        axis = ins[0].axes[a]
        f = _axis_span(axis)
        if (lo, hi, interior) == (0, 0, 0):
            res.append(axis)
        elif f is not None:
            j = _div(f.jump, interior + 1)  # interior padding: a transposed convolution's input
            res.append(((out[a], _Span(j, f.lo - lo * j, f.hi - lo * j)),))
        else:
            res.append(((out[a], None),))
    return tuple(res)


def _axes_slice(eqn, ins) -> tuple:
    p, x = eqn.params, ins[0]
    out = eqn.outvars[0].aval.shape
    strides = p["strides"] or (1,) * len(out)
    res = []
    for a, (st, s, n) in enumerate(zip(p["start_indices"], strides, out)):
        axis, f = x.axes[a], _axis_span(x.axes[a])
        if (st, s, n) == (0, 1, x.shape[a]):
            res.append(axis)
        elif f is not None:
            res.append(((n, _Span(f.jump * s, f.lo + st * f.jump, f.hi + st * f.jump)),))
        else:
            res.append(((n, None),))
    return tuple(res)


def _all_taps_of_one_base(ins) -> bool:
    taps = [v.tap for v in ins if v.data]
    return bool(taps) and all(taps) and len({id(t.base) for t in taps}) == 1


def _axes_concatenate(eqn, ins) -> tuple:
    dim = eqn.params["dimension"]
    out = eqn.outvars[0].aval.shape
    res = []
    for a, n in enumerate(out):
        if a == dim:  # taps laid side by side (a patch matrix), or unrelated branches
            res.append(((n, _TAPS if _all_taps_of_one_base(ins) else None),))
        else:
            res.append(_union_axis([v.axes[a] for v in ins if v.data], n))
    return tuple(res)


def _axes_stack(eqn, ins) -> tuple:
    dim = eqn.params["axis"]
    out = eqn.outvars[0].aval.shape
    rest = [a for a in range(len(out)) if a != dim]
    res = [None] * len(out)
    res[dim] = ((out[dim], _TAPS if _all_taps_of_one_base(ins) else None),)
    for k, a in enumerate(rest):
        res[a] = _union_axis([v.axes[k] for v in ins if v.data], out[a])
    return tuple(res)


def _axes_dlref_conv(eqn, ins) -> tuple:
    """The kernels' convolution primitive: x (N, *spatial, C_in) and its ``geometry``."""
    g, x = eqn.params["geometry"], ins[0]
    out = eqn.outvars[0].aval.shape
    res = [((n, None),) for n in out]
    if x.data:
        res[0] = x.axes[0]
        for i, (k, s, (lo, _), d) in enumerate(zip(g.kernel, g.stride, g.padding, g.dilation)):
            f = _axis_span(x.axes[1 + i])
            if f is not None:
                res[1 + i] = ((out[1 + i], _window(f, k, s, lo, d)),)
    residual = [v for v in ins[2:] if v.data and v.shape == tuple(out)]
    return tuple(_union_axis([r, *(v.axes[a] for v in residual)], n)
                 for a, (r, n) in enumerate(zip(res, out)))  # fmt: skip


# --------------------------------------------------------------------------------------------
# one rule per primitive: cost and label


def _conv_cost(convention: str, n_out: int, c: int, taps: int, positions: int) -> int:
    """A convolution's cost from its output size, input channels per group and taps, in
    :func:`dlref.shapes.conv_flops`'s conventions (without bias)."""
    macs = n_out * c * taps
    if convention == "macs":
        return macs
    if convention == "flops":
        return 2 * macs
    maps = n_out // max(positions, 1)  # N · C_out: the study guide adds C − 1 per output map
    return maps * (c * positions * (2 * taps - 1) + (c - 1))


def _cost_conv(eqn, ins, convention) -> int:
    dn = eqn.params["dimension_numbers"]
    w, out = eqn.invars[1].aval.shape, eqn.outvars[0].aval.shape
    positions = math.prod(out[a] for a in dn.out_spec[2:])
    taps = math.prod(w[a] for a in dn.rhs_spec[2:])
    return _conv_cost(convention, math.prod(out), w[dn.rhs_spec[1]], taps, positions)


def _cost_dot(eqn, ins, convention) -> int:
    (lc, _), _ = eqn.params["dimension_numbers"]
    c = math.prod(eqn.invars[0].aval.shape[a] for a in lc)
    n_out = math.prod(eqn.outvars[0].aval.shape)
    return {"macs": n_out * c, "flops": 2 * n_out * c, "seed": n_out * (2 * c - 1)}[convention]


def _cost_reduce_window(eqn, ins, convention) -> int:
    if convention == "macs":
        return 0
    return math.prod(eqn.outvars[0].aval.shape) * (math.prod(eqn.params["window_dimensions"]) - 1)


def _cost_reduce(eqn, ins, convention) -> int:
    if convention == "macs":
        return 0
    return math.prod(eqn.invars[0].aval.shape) - math.prod(eqn.outvars[0].aval.shape)


# Per-element cost of elementwise primitives that are not one operation
# (see dlref.shapes.activation_flops).
_ELEMENTWISE_COST = {"logistic": 4}


def _cost_elementwise(eqn, ins, convention) -> int:
    if convention == "macs":
        return 0
    n_out = math.prod(eqn.outvars[0].aval.shape)
    return n_out * _ELEMENTWISE_COST.get(eqn.primitive.name, 1) * len(eqn.outvars)


def _cost_free(eqn, ins, convention) -> int:
    return 0


def _epilogue(eqn, ins) -> tuple[int, bool]:
    """The dlref_conv epilogue: how many (C_out,) vectors, and whether a residual is added."""
    out = tuple(eqn.outvars[0].aval.shape)
    extra = [v.aval.shape for v in eqn.invars[2:]]
    return sum(len(s) == 1 for s in extra), any(tuple(s) == out for s in extra)


def _cost_dlref_conv(eqn, ins, convention) -> int:
    g = eqn.params["geometry"]
    x_shape = eqn.invars[0].aval.shape
    cost = conv_flops(g.c_in, g.c_out, tuple(g.kernel), tuple(g.in_sizes), stride=tuple(g.stride),
                      padding=tuple(g.padding), dilation=tuple(g.dilation), groups=g.groups,
                      batch=x_shape[0], bias=False, convention=convention)  # fmt: skip
    vectors, residual = _epilogue(eqn, ins)
    if convention != "macs":  # one operation per element per fused bias/scale/shift/residual
        cost += math.prod(eqn.outvars[0].aval.shape) * (vectors + residual)
    return cost


def _geometry_label(name: str, kernel, stride=(), dilation=(), groups: int = 1) -> str:
    """``"conv 3×3/2 d2 g4"``: kernel per spatial axis; stride and dilation when not 1, one
    number when the same on every axis (a 1-tap axis has no dilation to show)."""
    dilation = [d if k > 1 else 1 for k, d in zip(kernel, dilation)]

    def dims(v) -> str:
        v = [int(a) for a in v]
        return str(v[0]) if len(set(v)) == 1 else "×".join(map(str, v))

    text = f"{name} " + "×".join(str(int(k)) for k in kernel)
    if any(s != 1 for s in stride):
        text += "/" + dims(stride)
    if any(d != 1 for d in dilation):
        text += " d" + dims(dilation)
    if groups != 1:
        text += f" g{groups}"
    return text


def _label_conv(eqn, ins) -> str:
    p = eqn.params
    dn = p["dimension_numbers"]
    w = eqn.invars[1].aval.shape
    dilated = any(v != 1 for v in p["lhs_dilation"]) or ins[0].lhs_dilated
    name = "conv_transpose" if dilated else "conv"
    return _geometry_label(name, [w[a] for a in dn.rhs_spec[2:]], p["window_strides"],
                           p["rhs_dilation"], p["feature_group_count"])  # fmt: skip


_POOL_NAMES = {"reduce_window_max": "max_pool", "reduce_window_min": "min_pool"}


def _label_reduce_window(eqn, ins) -> str:
    p = eqn.params
    spatial = [a for a, axis in enumerate(ins[0].axes) if _axis_span(axis) is not None]
    spatial = spatial or [a for a, k in enumerate(p["window_dimensions"]) if k != 1] or [0]
    kind = _POOL_NAMES.get(eqn.primitive.name, "sum_pool")
    return _geometry_label(kind, [p["window_dimensions"][a] for a in spatial],
                           [p["window_strides"][a] for a in spatial],
                           [p["window_dilation"][a] for a in spatial])  # fmt: skip


def _label_dot(eqn, ins) -> str:
    return "dense" if not all(v.data for v in ins) else "dot"


_GLOBAL_NAMES = {"reduce_max": "global_max_pool", "reduce_min": "global_min_pool",
                 "reduce_sum": "global_sum_pool"}  # fmt: skip


def _label_reduce(eqn, ins) -> str:
    x, axes = ins[0], eqn.params["axes"]
    spatial = [a for a, axis in enumerate(x.axes) if any(isinstance(s, _Span) for _, s in axis)]
    name = eqn.primitive.name
    if spatial and set(spatial) <= set(axes) and name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[name]
    return name


def _label_dlref_conv(eqn, ins) -> str:
    g = eqn.params["geometry"]
    return _geometry_label("conv", g.kernel, g.stride, g.dilation, g.groups)


def _tags_dlref_conv(eqn, ins) -> list[str]:
    """The fused epilogue as tags: one (C_out,) vector is a bias, two a folded BN (scale and
    shift), three both; a residual operand is an add; an ``activation`` parameter names its
    activation."""
    vectors, residual = _epilogue(eqn, ins)
    tags = {0: [], 1: ["bias"], 2: ["bn"]}.get(vectors, ["bias", "bn"])
    tags += ["add"] if residual else []
    act = eqn.params.get("activation")
    if isinstance(act, str) and act.lower() not in ("", "none", "identity", "linear"):
        tags.append(act)
    return tags


def _label_prim(eqn, ins) -> str:
    return eqn.primitive.name


@dataclasses.dataclass(frozen=True)
class _Rule:
    """How the walk treats one primitive.

    Attributes:
      role: ``"free"`` (moves or relabels data: no cost, no row of its own), ``"layer"``
        (starts a row: convolution, dense, pooling window, reduction), ``"elementwise"``
        (joins the row whose output it continues, as a tag: bias, BN, activation) or
        ``"call"`` (a sub-jaxpr, walked in place).
      axes: ``(eqn, ins) -> axes`` of the output (see :class:`_Value`).
      cost: ``(eqn, ins, convention) -> int``.
      label: ``(eqn, ins) -> str``, the row label of a layer.
      tags: ``(eqn, ins) -> list``, the tags a layer carries in itself (a fused epilogue).
      carries: for free ops: the output is still the row's output (a reshape, a cast), so
        the row shows it.
      jaxpr: for calls: the parameter holding the sub-jaxpr.
    """

    role: str
    axes: Callable = _axes_elementwise
    cost: Callable = _cost_elementwise
    label: Callable = _label_prim
    tags: Callable | None = None
    carries: bool = False
    jaxpr: str = ""


_ELEMENTWISE = _Rule("elementwise")
_CARRY = _Rule("free", cost=_cost_free, carries=True)
_MOVE = _Rule("free", cost=_cost_free)

_RULES: dict[str, _Rule] = {
    # layers
    "conv_general_dilated": _Rule("layer", _axes_conv, _cost_conv, _label_conv),
    "dlref_conv": _Rule("layer", _axes_dlref_conv, _cost_dlref_conv, _label_dlref_conv,
                        _tags_dlref_conv),
    "dot_general": _Rule("layer", _axes_dot, _cost_dot, _label_dot),
    **{
        p: _Rule("layer", _axes_reduce_window, _cost_reduce_window, _label_reduce_window)
        for p in ("reduce_window_max", "reduce_window_min", "reduce_window_sum", "reduce_window")
    },
    **{
        p: _Rule("layer", _axes_reduce, _cost_reduce, _label_reduce)
        for p in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and",
                  "reduce_or", "argmax", "argmin")  # fmt: skip
    },
    "concatenate": _Rule("layer", _axes_concatenate, _cost_free),
    "stack": _Rule("layer", _axes_stack, _cost_free),
    # data movement that carries a row's output on
    "reshape": dataclasses.replace(_CARRY, axes=_axes_reshape),
    "broadcast_in_dim": dataclasses.replace(_CARRY, axes=_axes_broadcast),
    "squeeze": dataclasses.replace(_CARRY, axes=_axes_squeeze),
    "transpose": dataclasses.replace(_CARRY, axes=_axes_transpose),
    **{p: _CARRY for p in ("convert_element_type", "copy", "copy_p", "reduce_precision",
                           "sharding_constraint", "device_put", "optimization_barrier")},
    # data movement that makes something new: padding for, and taps of, the next window
    "pad": dataclasses.replace(_MOVE, axes=_axes_pad),
    "slice": dataclasses.replace(_MOVE, axes=_axes_slice),
    **{p: _MOVE for p in ("dynamic_slice", "gather", "rev", "iota", "dynamic_update_slice")},
    # sub-jaxprs
    "jit": _Rule("call", jaxpr="jaxpr"),
    "pjit": _Rule("call", jaxpr="jaxpr"),
    "closed_call": _Rule("call", jaxpr="call_jaxpr"),
    "core_call": _Rule("call", jaxpr="call_jaxpr"),
    "remat2": _Rule("call", jaxpr="jaxpr"),
    "checkpoint": _Rule("call", jaxpr="jaxpr"),
    "custom_jvp_call": _Rule("call", jaxpr="call_jaxpr"),
    "custom_vjp_call": _Rule("call", jaxpr="call_jaxpr"),
    "custom_vjp_call_jaxpr": _Rule("call", jaxpr="fun_jaxpr"),
    "scan": _Rule("call", jaxpr="jaxpr"),  # walked once, its costs counted `length` times
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# rows


@dataclasses.dataclass(eq=False)
class _Window:
    """The taps of one input that a row combines, and the work it took."""

    base: _Value
    keys: set = dataclasses.field(default_factory=set)
    stride: tuple = ()
    macs: int = 0  # multiply-accumulates with parameters (a convolution)
    groups: int = 1  # batch dimensions of its contractions (a grouped convolution's groups)
    combine: list = dataclasses.field(default_factory=list)  # primitives that joined taps

    def kind(self) -> str:
        if self.macs:
            return "conv_transpose" if self.base.lhs_dilated else "conv"
        for prim, name in (("max", "max_pool"), ("reduce_max", "max_pool"), ("min", "min_pool"),
                           ("reduce_min", "min_pool"), ("add", "sum_pool"),
                           ("reduce_sum", "sum_pool")):  # fmt: skip
            if prim in self.combine:
                return name
        return self.combine[0] if self.combine else "window"

    def geometry(self) -> tuple[list, list]:
        """Kernel size and dilation per spatial axis, read off the taps' offsets."""
        kernel, dilation = [], []
        for i in range(len(next(iter(self.keys)))):
            offsets = sorted({k[i] for k in self.keys})
            gaps = {b - a for a, b in zip(offsets, offsets[1:])}
            kernel.append(len(offsets))
            dilation.append(gaps.pop() if len(gaps) == 1 else 1)
        return kernel, dilation


@dataclasses.dataclass(eq=False)
class _Row:
    """A table row being built: its main op, the elementwise ops fused after it (tags), what
    it used and cost, and its current output."""

    label: str
    tags: list = dataclasses.field(default_factory=list)
    params: int = 0
    frozen: int = 0
    flops: int = 0
    end: _Value | None = None  # the latest value the row computed
    shown: _Value | None = None  # the value the table shows (shape, field)
    stamp: int = 0  # counts the row's outputs: a value is the row's output if stamps match
    window: _Window | None = None


def _unstack(v: _Value) -> _Value:
    """One step of a scanned input: the leading (time) axis dropped."""
    if not v.data:
        return _Value(v.shape[1:], v.dtype, sources=v.sources, const=v.const)
    return _Value(v.shape[1:], v.dtype, v.axes[1:], row=v.row, stamp=v.stamp, view=v.view)


def _stack(v: _Value, shape: tuple) -> _Value:
    """A scan's stacked output: a new leading axis on each step's value."""
    if not v.data:
        return _Value(shape, v.dtype, sources=v.sources, const=None)
    axes = (((shape[0], None),), *v.axes) if len(shape) == len(v.shape) + 1 else _fresh(shape)
    return _Value(shape, v.dtype, axes, row=v.row, stamp=v.stamp, view=v.view)


def _scan_carries(params) -> range:
    """The positions of a scan's carried operands (after its constants)."""
    if "num_consts" in params:
        return range(params["num_consts"], params["num_consts"] + params["num_carry"])
    # jax 0.11: ft_in, a flat tree (consts, carry, xs) whose parts have one leaf per operand
    groups = getattr(params.get("ft_in"), "elts", None)
    if groups is not None and len(groups) == 3:
        return range(len(groups[0]), len(groups[0]) + len(groups[1]))
    return range(0)


def _axes_for(shape, outs, axes) -> tuple:
    """The rules describe the first output; another output of another shape (a loop's
    carry, a split) gets fresh axes."""
    return axes if shape == outs[0][1] else _fresh(shape)


def _is_param(v: _Value) -> bool:
    return not v.data and bool(v.sources)


class _Walker:
    """Walks a jaxpr once, in order: values per variable, rows of the table."""

    def __init__(self, convention: str):
        self.convention = convention
        self.sources: list[tuple[int, bool]] = []  # (size, trainable) per parameter array
        self.used: set[int] = set()
        self.rows: list[_Row] = []
        self.current: _Row | None = None
        self.windows: dict[int, _Row] = {}  # id(base) -> the row combining its taps
        self.repeat = 1  # iterations of the loops (scans) being walked: costs count this often

    def source(self, aval: Any, trainable: bool = True) -> _Value:
        """A parameter array (an argument, or a floating constant closed over)."""
        shape = tuple(aval.shape)
        if not jnp.issubdtype(aval.dtype, jnp.floating):
            return _Value(shape, aval.dtype)
        self.sources.append((math.prod(shape), trainable))
        return _Value(shape, aval.dtype, sources=frozenset([len(self.sources) - 1]))

    def run(self, jaxpr: Any, env: dict) -> None:
        for eqn in jaxpr.eqns:
            self.eqn(eqn, env)

    @staticmethod
    def read(env: dict, v: Any) -> _Value:
        if isinstance(v, jex_core.Literal):
            val = np.asarray(v.val)
            const = float(val) if val.ndim == 0 and val.dtype.kind in "biuf" else None
            return _Value(tuple(val.shape), val.dtype, const=const)
        return env[v]

    def eqn(self, eqn: Any, env: dict) -> None:
        rule = _RULES.get(eqn.primitive.name, _ELEMENTWISE)
        ins = [self.read(env, v) for v in eqn.invars]
        if rule.role == "call" and self.call(eqn, rule, ins, env):
            return
        data = [v for v in ins if v.data]
        outs = [(o, tuple(o.aval.shape), o.aval.dtype) for o in eqn.outvars]
        if not data:  # parameters, constants, index arithmetic: off the data path
            src = frozenset().union(*(v.sources for v in ins))
            const = ins[0].const if len(ins) == 1 and rule.role == "free" else None
            for o, shape, dtype in outs:
                env[o] = _Value(shape, dtype, sources=src, const=const)
            return
        if self.is_identity(eqn, ins, data):
            env[eqn.outvars[0]] = data[0]
            return
        axes = rule.axes(eqn, ins)
        if rule.role == "free":
            x, prim = data[0], eqn.primitive.name
            tap = self.tap_of(eqn, x, axes) if prim == "slice" else x.tap
            dilated = x.lhs_dilated or (prim == "pad" and any(
                interior for _, _, interior in eqn.params["padding_config"]))  # fmt: skip
            view = x.view and rule.carries
            for o, shape, dtype in outs:
                env[o] = _Value(shape, dtype, _axes_for(shape, outs, axes), row=x.row,
                                stamp=x.stamp, view=view, tap=tap, lhs_dilated=dilated)  # fmt: skip
            row, out = x.row, env[eqn.outvars[0]]
            if view and row is not None and x.stamp == row.stamp and out.spans_apart():
                row.shown = out
            return
        if self.joins_window(eqn, rule, ins, data):
            self.window_step(eqn, rule, ins, data, axes, env)
            return
        self.layer_or_tag(eqn, rule, ins, data, axes, env)

    def call(self, eqn, rule, ins, env) -> bool:
        sub = eqn.params.get(rule.jaxpr)
        if sub is None:
            return False
        inner = sub.jaxpr if hasattr(sub, "jaxpr") else sub
        if len(inner.invars) != len(ins) or len(inner.outvars) != len(eqn.outvars):
            return False
        scan = eqn.primitive.name == "scan"
        if scan:  # the body sees one slice of each scanned input (consts and carry whole)
            ins = [v if tuple(iv.aval.shape) == v.shape else _unstack(v)
                   for iv, v in zip(inner.invars, ins)]  # fmt: skip
            # a floating carry joins the data path after the first step (an RNN's state)
            ins = [_Value(v.shape, v.dtype, _fresh(v.shape)) if k in _scan_carries(eqn.params)
                   and not v.data and jnp.issubdtype(v.dtype, jnp.floating) else v
                   for k, v in enumerate(ins)]  # fmt: skip
            self.repeat *= eqn.params["length"]
        sub_env = dict(zip(inner.invars, ins))
        for cv in inner.constvars:
            sub_env[cv] = self.source(cv.aval)
        self.run(inner, sub_env)
        for o, io in zip(eqn.outvars, inner.outvars):
            v = self.read(sub_env, io)
            env[o] = _stack(v, tuple(o.aval.shape)) if tuple(o.aval.shape) != v.shape else v
        if scan:
            self.repeat //= eqn.params["length"]
        return True

    @staticmethod
    def is_identity(eqn, ins, data) -> bool:
        """``x + 0`` or ``x - 0``: a sum started from zeros (a tap loop's accumulator)."""
        if eqn.primitive.name not in ("add", "sub") or len(data) != 1 or len(ins) != 2:
            return False
        if data[0].shape != tuple(eqn.outvars[0].aval.shape):
            return False
        if eqn.primitive.name == "sub" and ins[0] is not data[0]:
            return False
        other = ins[1] if ins[0] is data[0] else ins[0]
        return other.const == 0

    @staticmethod
    def tap_of(eqn, x: _Value, axes) -> _Tap:
        """A slice is a tap of ``x``: its offset into ``x`` per spatial span, and its stride."""
        keys, stride = [], []
        for axis, out_axis in zip(x.axes, axes):
            f, g = _axis_span(axis), _axis_span(out_axis)
            if f is not None and g is not None:
                keys.append(round((g.lo - f.lo) / f.jump))
                stride.append(round(g.jump / f.jump))
        return _Tap(x, frozenset([tuple(keys)]), True, tuple(stride))

    def joins_window(self, eqn, rule, ins, data) -> bool:
        """Does this op assemble a window: taps of one base still open, or being combined?"""
        taps = [v.tap for v in data]
        if not all(taps) or len({id(t.base) for t in taps}) != 1:
            return False
        assembling = any(v.is_open() for v in data) or len({t.keys for t in taps}) > 1
        if not assembling:
            return False
        if id(taps[0].base) in self.windows:
            return True
        # a new window starts at a layer on taps (a conv's first tap), a per-tap weight, or
        # a combination of two taps (a pooling window); a lone tap through an activation is
        # a crop of the row it came from, not a window
        weighted = eqn.primitive.name == "mul" and any(_is_param(v) for v in ins)
        return rule.role == "layer" or weighted or len({t.keys for t in taps}) > 1

    def account(self, row: _Row, ins) -> None:
        """Parameters reach the row that uses them first."""
        new = set()
        for v in ins:
            if not v.data:
                new |= set(v.sources) - self.used
        self.used |= new
        row.params += sum(self.sources[s][0] for s in new if self.sources[s][1])
        row.frozen += sum(self.sources[s][0] for s in new if not self.sources[s][1])

    def output(self, row: _Row, eqn, axes, env, tap: _Tap | None = None) -> None:
        row.stamp += 1
        outs = [(o, tuple(o.aval.shape)) for o in eqn.outvars]
        for o, shape in outs:
            env[o] = _Value(shape, o.aval.dtype, _axes_for(shape, outs, axes), row=row,
                            stamp=row.stamp, view=True, tap=tap)  # fmt: skip
        row.end = env[eqn.outvars[0]]
        if row.shown is None or row.end.spans_apart():
            row.shown = row.end
        self.current = row

    def window_step(self, eqn, rule, ins, data, axes, env) -> None:
        taps = [v.tap for v in data]
        base = taps[0].base
        row = self.windows.get(id(base))
        if row is None:
            row = _Row("", window=_Window(base, stride=taps[0].stride))
            self.windows[id(base)] = row
            self.rows.append(row)
        w = row.window
        keys = frozenset().union(*(t.keys for t in taps))
        w.keys |= keys
        prim = eqn.primitive.name
        weighted = any(_is_param(v) for v in ins)
        if rule.role == "layer" and weighted:
            w.macs += rule.cost(eqn, ins, "macs") * self.repeat
            if prim == "dot_general":
                (_, _), (lb, _) = eqn.params["dimension_numbers"]
                w.groups = max(w.groups, math.prod(eqn.invars[0].aval.shape[a] for a in lb))
        elif prim == "mul" and weighted:
            w.macs += math.prod(eqn.outvars[0].aval.shape) * self.repeat
        elif rule.role == "layer" or len({t.keys for t in taps}) > 1:
            w.combine.append(prim)
        self.account(row, ins)
        single = all(t.single for t in taps) and len({t.keys for t in taps}) == 1
        single = single and rule.role != "layer"  # a layer consumes the tap
        if rule.role == "layer" and weighted:  # ... and a weighted one, all taps it was given
            axes = tuple(tuple((n, None if sp == _TAPS else sp) for n, sp in ax) for ax in axes)
        self.output(row, eqn, axes, env, _Tap(base, keys, single, taps[0].stride))

    def layer_or_tag(self, eqn, rule, ins, data, axes, env) -> None:
        cur = self.current
        continues = (len(data) == 1 and cur is not None and data[0].row is cur
                     and data[0].stamp == cur.stamp)  # fmt: skip
        if rule.role != "layer" and continues:
            tag = self.tag(eqn, ins)
            if tag is not None and (not cur.tags or cur.tags[-1] != tag):
                cur.tags.append(tag)
            row = cur
        else:
            if rule.role == "layer":
                row = _Row(rule.label(eqn, ins), list(rule.tags(eqn, ins)) if rule.tags else [])
            elif eqn.primitive.name == "add" and len(data) == 2:
                row = _Row("add")
            else:  # a row that starts with an elementwise op: named by its tag
                row = _Row("", tags=[self.tag(eqn, ins) or eqn.primitive.name])
            self.rows.append(row)
        self.account(row, ins)
        row.flops += rule.cost(eqn, ins, self.convention) * self.repeat
        self.output(row, eqn, axes, env)

    @staticmethod
    def tag(eqn, ins) -> str | None:
        prim = eqn.primitive.name
        consts = [v.const for v in ins if not v.data and v.const is not None]
        params = any(_is_param(v) for v in ins)
        if prim == "max" and consts and consts[0] == 0:
            return "relu"
        if prim in ("add", "sub", "mul", "div") and params:
            return {"add": "bias", "sub": "shift", "mul": "scale", "div": "scale"}[prim]
        if prim in ("mul", "div") and not params and any(not v.data for v in ins):
            return "mean"  # by a constant (a pooling divisor)
        return {"logistic": "sigmoid"}.get(prim, prim)

    # -- the table -----------------------------------------------------------------------------

    def window_cost(self, row: _Row) -> int:
        w, end = row.window, row.end
        n_out, taps = math.prod(end.shape), max(len(w.keys), 1)
        positions = math.prod(n for axis in end.axes for n, s in axis if isinstance(s, _Span))
        if w.macs:
            c = w.macs // (n_out * taps) if w.macs % (n_out * taps) == 0 else w.macs // n_out
            taps = taps if w.macs % (n_out * taps) == 0 else 1
            return _conv_cost(self.convention, n_out, c, taps, positions)
        return 0 if self.convention == "macs" else n_out * (taps - 1)

    def finish(self) -> tuple[SummaryRow, ...]:
        rows = []
        for r in self.rows:
            op, tags = r.label, list(r.tags)
            flops = r.flops
            if r.window is not None:
                kernel, dilation = r.window.geometry()
                op = _geometry_label(r.window.kind(), kernel, r.window.stride, dilation,
                                     r.window.groups)  # fmt: skip
                flops += self.window_cost(r)
            if {"shift", "scale", "bias"} <= set(tags):
                i = tags.index("shift")
                tags = (
                    tags[:i] + ["bn"] + [t for t in tags[i:] if t not in ("shift", "scale", "bias")]
                )
            if "mean" in tags and (op.startswith("sum_pool") or op.endswith("sum_pool")
                                   or op == "reduce_sum"):  # fmt: skip
                op = {"reduce_sum": "mean"}.get(op, op.replace("sum_pool", "avg_pool"))
                tags.remove("mean")
            if tags:
                op = op + " +" + "+".join(tags) if op else "+".join(tags)
            shown = r.shown
            fields = shown.spans()
            rows.append(
                SummaryRow(
                    op=op,
                    shape=shown.shape,
                    dtype=str(jnp.dtype(shown.dtype)),
                    receptive_field=tuple(f.hi - f.lo + 1 for f in fields) if fields else None,
                    jump=tuple(f.jump for f in fields) if fields else None,
                    start=tuple((f.lo + f.hi) / 2 for f in fields) if fields else None,
                    params=r.params,
                    non_trainable=r.frozen,
                    flops=flops,
                    bytes=math.prod(shown.shape) * jnp.dtype(shown.dtype).itemsize,
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
    variables, descending into ``jit`` / ``checkpoint`` / ``custom_jvp`` / ``custom_vjp``
    calls, follows the *data path* (the variables computed from ``example_args[data_argnum]``):

    * receptive field: each data variable carries, per spatial axis, the jump and the
      interval ``[lo, hi]`` of input pixels its first unit sees; a convolution or pooling
      window composes as in :func:`dlref.shapes.receptive_field`, and where paths join (a
      residual ``add``) the intervals are united — the largest field over paths, with
      misaligned branches handled — so size ``= hi − lo + 1``;
    * parameters: every other floating input array (and every floating constant closed over)
      reaching the data path — conv and dense weights, biases, BN scales and statistics — is
      counted once, at the layer that uses it first; arrays in ``non_trainable_argnums`` are
      reported apart;
    * cost: convolutions and ``dot_general`` as in :func:`dlref.shapes.conv_flops`; under
      ``"flops"`` and ``"seed"`` also pooling windows (``K − 1`` per output, as
      :func:`dlref.shapes.pool_flops`), reductions, and one operation per element of every
      other elementwise op (4 for ``logistic``); under ``"macs"`` only the
      multiply–accumulates;
    * rows: each convolution, dense layer, pooling window or reduction starts a row and the
      elementwise ops that continue its output (bias, BN, activation) join it; an op whose
      input is not the current row's output (a residual add) starts a new row.

    Every form of a convolution or pooling gives the same row: the primitive
    (``lax.conv_general_dilated``, ``lax.reduce_window``, the kernels' ``dlref_conv``), a
    loop over the window's taps (strided slices combined by ``+`` or ``max``:
    :func:`dlref.conv` with ``impl="reference"``, :func:`dlref.max_pool`,
    :func:`dlref.avg_pool`), or taps stacked and contracted (im2col). A ``reshape`` that
    merges spatial axes (a flatten, im2col's patch matrix) keeps their fields, so splitting
    them back restores them.

    ``"flops"`` equals XLA's ``cost_analysis()`` ``flops + transcendentals`` for networks
    of primitives, less XLA's saving on padding taps (see :func:`dlref.shapes.conv_flops`).

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
    check_choice(convention, CONVENTIONS, "convention", op)
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
    walker = _Walker(convention)
    env: dict = {}
    for cv in jaxpr.constvars:
        env[cv] = walker.source(cv.aval)
    invars = iter(jaxpr.invars)
    for argnum, leaves in enumerate(leaves_per_arg):
        for _ in leaves:
            v = next(invars)
            shape = tuple(v.aval.shape)
            if argnum == data_argnum:
                spatial = range(1, len(shape) - 1) if spatial_axes is None else spatial_axes
                axes = tuple(
                    ((n, _Span(1, 0, 0) if a in spatial else None),) for a, n in enumerate(shape)
                )
                env[v] = _Value(shape, v.aval.dtype, axes)
            else:
                env[v] = walker.source(v.aval, argnum not in non_trainable_argnums)
    walker.run(jaxpr, env)
    rows = walker.finish()
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
