"""The rules of :func:`dlref.summary`'s walk over a jaxpr, one per primitive (:data:`RULES`).

A :class:`Value` is what the walk knows about one jaxpr variable: on the data path (everything
computed from the input) the input pixels the first unit of each axis sees, per *atom* of the
axis (a reshape may merge axes, as im2col merges the batch and spatial axes into the rows of a
matrix, and split them back); off it, which parameter arrays it is made of. A :class:`Rule`
says how a primitive moves that knowledge (``axes``), what it costs in each convention of
:func:`dlref.shapes.conv_flops`, how its row is labelled, and its role in the walk
(:mod:`dlref.model_summary`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from dlref.shapes import conv_flops

# --------------------------------------------------------------------------------------------
# what the walk knows about a variable


class Span(NamedTuple):
    """The input pixels unit 0 of a spatial axis sees, ``[lo, hi]``, and the ``jump`` (input
    pixels) between neighbouring units; a transposed convolution makes them fractional."""

    jump: float
    lo: float
    hi: float


TAPS = "taps"  # the span of an axis that enumerates a window's taps (im2col's patch axis)

# An axis is a tuple of atoms ``(size, span)``, in row-major order, whose sizes multiply to the
# axis size (``()`` for a size-1 axis a reshape made); ``span`` is a Span (a spatial axis of
# the input, composed through the layers so far), TAPS, or None (batch, channels).
Atom = tuple[int, Any]


@dataclasses.dataclass(frozen=True)
class Tap:
    """A value made of window taps: strided slices of ``base`` (see :mod:`dlref.model_summary`).

    ``keys`` are the taps' offsets into ``base``, one tuple (one int per spatial span) per
    tap; ``single`` is one tap not yet combined with the others or consumed by a layer."""

    base: Value
    keys: frozenset
    single: bool
    stride: tuple


@dataclasses.dataclass(frozen=True, eq=False)
class Value:
    """What the walk knows about one jaxpr variable (compared by identity)."""

    shape: tuple[int, ...]
    dtype: Any = None
    axes: tuple[tuple[Atom, ...], ...] | None = None  # on the data path: atoms per axis
    sources: frozenset = frozenset()  # off it: the parameter arrays it is computed from
    const: float | None = None  # off it: a known uniform value (x + 0 is no layer)
    row: Any = None  # the row (dlref.model_summary._Row) that computed it ...
    stamp: int = -1  # ... and which of that row's outputs (row.stamp when computed)
    view: bool = False  # that output itself, reshaped or cast (no pad, no slice)
    tap: Tap | None = None
    lhs_dilated: bool = False  # zeros interleaved (a transposed convolution's input)

    @property
    def data(self) -> bool:
        return self.axes is not None

    def spans(self) -> list[Span]:
        return [s for axis in self.axes or () for _, s in axis if isinstance(s, Span)]

    def has_taps_axis(self) -> bool:
        return any(s == TAPS for axis in self.axes or () for _, s in axis)

    def spans_apart(self) -> bool:
        """Every spatial span alone on its axis (not merged with others by a reshape)."""
        return all(
            sum(1 for n, s in axis if n > 1 or isinstance(s, Span)) <= 1
            for axis in self.axes or ()
            if any(isinstance(s, Span) for _, s in axis)
        )

    def is_open(self) -> bool:
        """Still assembling a window: a lone tap, or taps stacked along an axis."""
        return self.tap is not None and (self.tap.single or self.has_taps_axis())


def fresh(shape) -> tuple[tuple[Atom, ...], ...]:
    return tuple(((n, None),) for n in shape)


def union_spans(spans: list) -> Any:
    real = [s for s in spans if isinstance(s, Span)]
    if real:
        return Span(max(s.jump for s in real), min(s.lo for s in real), max(s.hi for s in real))
    return TAPS if TAPS in spans else None


def union_axis(candidates: list[tuple[Atom, ...]], size: int) -> tuple[Atom, ...]:
    """The atoms of one output axis that several inputs feed (a join): spans united."""
    if not candidates:
        return ((size, None),)
    sizes = [tuple(n for n, _ in c) for c in candidates]
    same = [c for c, s in zip(candidates, sizes) if s == sizes[0]]
    return tuple((n, union_spans([c[i][1] for c in same])) for i, (n, _) in enumerate(same[0]))


def axis_span(axis: tuple[Atom, ...]) -> Span | None:
    """The span of an axis that is one spatial axis (other atoms of size 1), else None."""
    spans = [s for _, s in axis if isinstance(s, Span)]
    big = [n for n, _ in axis if n > 1]
    return spans[0] if len(spans) == 1 and len(big) <= 1 else None


def exact_div(a: float, b: int) -> float:
    """``a / b``, an int when exact (fields stay ints unless a transposed conv halves them)."""
    return a // b if a % b == 0 else a / b


def compose_window(f: Span, k: int, s: int, lo: int, rd: int = 1, ld: int = 1) -> Span:
    """Compose a window (kernel k, stride s, left pad lo, rhs and lhs dilations) onto f."""
    j, a, b = f
    if ld == 1:
        return Span(j * s, a - lo * j, b + (rd * (k - 1) - lo) * j)
    # lhs (base) dilation, i.e. a transposed convolution: continuous-coordinate bound
    reach = exact_div((rd * (k - 1) - lo) * j, ld)
    return Span(exact_div(j * s, ld), a - exact_div(lo * j, ld), b + reach)


# --------------------------------------------------------------------------------------------
# one rule per primitive: how its output's axes follow from its inputs'


def axes_elementwise(eqn, ins) -> tuple:
    """Same-shape ops (and unknown ones): each output axis joins the input axes of its size."""
    out = eqn.outvars[0].aval.shape
    res = []
    for a, n in enumerate(out):
        cands = [v.axes[a] for v in ins if v.data and len(v.shape) == len(out) and v.shape[a] == n]
        res.append(union_axis(cands, n))
    return tuple(res)


def axes_conv(eqn, ins) -> tuple:
    x, p = ins[0], eqn.params
    out = eqn.outvars[0].aval.shape
    res = list(fresh(out))
    if not x.data:
        return tuple(res)
    dn = p["dimension_numbers"]
    lhs, rhs, o = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    kshape = eqn.invars[1].aval.shape
    res[o[0]] = x.axes[lhs[0]]
    for i in range(len(lhs) - 2):
        f = axis_span(x.axes[lhs[2 + i]])
        if f is not None:
            f = compose_window(
                f,
                kshape[rhs[2 + i]],
                p["window_strides"][i],
                p["padding"][i][0],
                p["rhs_dilation"][i],
                p["lhs_dilation"][i],
            )
            res[o[2 + i]] = ((out[o[2 + i]], f),)
    return tuple(res)


def axes_reduce_window(eqn, ins) -> tuple:
    x, p = ins[0], eqn.params
    out = eqn.outvars[0].aval.shape
    res = []
    for a, n in enumerate(out):
        f = axis_span(x.axes[a])
        moves = (
            p["window_dimensions"][a],
            p["window_strides"][a],
            p["padding"][a][0],
            p["window_dilation"][a],
            p["base_dilation"][a],
        )
        if f is not None:
            res.append(((n, compose_window(f, *moves)),))
        elif moves == (1, 1, 0, 1, 1) and p["padding"][a][1] == 0:
            res.append(x.axes[a])
        else:
            res.append(((n, None),))
    return tuple(res)


def axes_dot(eqn, ins) -> tuple:
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
    return tuple(union_axis(c, n) for c, n in zip(res, out))


def axes_reduce(eqn, ins) -> tuple:
    x, axes = ins[0], eqn.params["axes"]
    return tuple(ax for a, ax in enumerate(x.axes) if a not in axes)


def axes_broadcast(eqn, ins) -> tuple:
    x, bd = ins[0], eqn.params["broadcast_dimensions"]
    out = eqn.outvars[0].aval.shape
    res = list(fresh(out))
    for a, j in enumerate(bd):
        if x.shape[a] == out[j]:
            res[j] = x.axes[a]
    return tuple(res)


def axes_reshape(eqn, ins) -> tuple:
    """Regroup the atoms row-major into the new sizes.

    A reshape that only inserts or removes size-1 axes keeps every axis (left-aligned). Any
    other regroups the atoms; an atom that must be split loses its span (a space-to-depth
    reshape splits a spatial axis: its field is no longer one axis). A spatial axis of size
    1 that has no size-1 axis to go to joins the next axis (a flatten)."""
    x, out = ins[0], eqn.outvars[0].aval.shape
    if [n for n in x.shape if n != 1] == [n for n in out if n != 1]:
        return reshape_unit_axes(x, out)
    atoms = [a for axis in x.axes for a in axis]
    res, i = [], 0
    for n in out:
        group, p = [], 1
        if n == 1 and i < len(atoms) and atoms[i][0] == 1:  # a size-1 axis to a size-1 axis
            group.append(atoms[i])
            i += 1
        while p < n:
            if i >= len(atoms):
                return fresh(out)
            size, span = atoms[i]
            if n % (p * size) == 0:
                group.append((size, span))
                p, i = p * size, i + 1
            elif size % (n // p) == 0:  # split the atom: its high part here, the rest next
                group.append((n // p, None))
                atoms[i] = (size // (n // p), None)
                p = n
            else:
                return fresh(out)
        res.append(tuple(group))
    rest = [a for a in atoms[i:] if a[1] is not None]
    if rest and res:  # trailing size-1 spatial atoms join the last axis
        res[-1] = res[-1] + tuple(rest)
    return tuple(res)


def reshape_unit_axes(x: Value, out) -> tuple:
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


def axes_squeeze(eqn, ins) -> tuple:
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


def axes_transpose(eqn, ins) -> tuple:
    return tuple(ins[0].axes[a] for a in eqn.params["permutation"])


def axes_pad(eqn, ins) -> tuple:
    out = eqn.outvars[0].aval.shape
    res = []
    for a, (lo, hi, interior) in enumerate(eqn.params["padding_config"]):
        axis = ins[0].axes[a]
        f = axis_span(axis)
        if (lo, hi, interior) == (0, 0, 0):
            res.append(axis)
        elif f is not None:
            # interior padding: a transposed convolution's input, fractional in input pixels
            j = exact_div(f.jump, interior + 1)
            res.append(((out[a], Span(j, f.lo - lo * j, f.hi - lo * j)),))
        else:
            res.append(((out[a], None),))
    return tuple(res)


def axes_slice(eqn, ins) -> tuple:
    p, x = eqn.params, ins[0]
    out = eqn.outvars[0].aval.shape
    strides = p["strides"] or (1,) * len(out)
    res = []
    for a, (st, s, n) in enumerate(zip(p["start_indices"], strides, out)):
        axis, f = x.axes[a], axis_span(x.axes[a])
        if (st, s, n) == (0, 1, x.shape[a]):
            res.append(axis)
        elif f is not None:
            res.append(((n, Span(f.jump * s, f.lo + st * f.jump, f.hi + st * f.jump)),))
        else:
            res.append(((n, None),))
    return tuple(res)


def all_taps_of_one_base(ins) -> bool:
    taps = [v.tap for v in ins if v.data]
    return bool(taps) and all(taps) and len({id(t.base) for t in taps}) == 1


def axes_concatenate(eqn, ins) -> tuple:
    dim = eqn.params["dimension"]
    out = eqn.outvars[0].aval.shape
    res = []
    for a, n in enumerate(out):
        if a == dim:  # taps laid side by side (a patch matrix), or unrelated branches
            res.append(((n, TAPS if all_taps_of_one_base(ins) else None),))
        else:
            res.append(union_axis([v.axes[a] for v in ins if v.data], n))
    return tuple(res)


def axes_stack(eqn, ins) -> tuple:
    dim = eqn.params["axis"]
    out = eqn.outvars[0].aval.shape
    rest = [a for a in range(len(out)) if a != dim]
    res = [None] * len(out)
    res[dim] = ((out[dim], TAPS if all_taps_of_one_base(ins) else None),)
    for k, a in enumerate(rest):
        res[a] = union_axis([v.axes[k] for v in ins if v.data], out[a])
    return tuple(res)


def _geometry_axes(eqn, ins, transposed: bool) -> list:
    """Output axes of the kernels' convolution primitives from their ``geometry``: the
    forward conv composes the window ``(k, s, lo, d)``; its transpose (the input gradient,
    ``dy (N, *out, C_out)`` to ``(N, *in, C_in)``) is a stride-1 conv of the input dilated by
    the stride, padded ``d(k-1) - lo`` on the left."""
    g, x = eqn.params["geometry"], ins[0]
    out = eqn.outvars[0].aval.shape
    res = [((n, None),) for n in out]
    if x.data:
        res[0] = x.axes[0]
        for i, (k, s, (lo, _), d) in enumerate(zip(g.kernel, g.stride, g.padding, g.dilation)):
            f = axis_span(x.axes[1 + i])
            if f is None:
                continue
            if transposed:
                f = compose_window(f, k, 1, d * (k - 1) - lo, d, s)
            else:
                f = compose_window(f, k, s, lo, d)
            res[1 + i] = ((out[1 + i], f),)
    return res


def axes_dlref_conv(eqn, ins) -> tuple:
    """The kernels' convolution primitive: x (N, *spatial, C_in), its ``geometry``, and a
    residual operand of the output's shape joined in."""
    out = eqn.outvars[0].aval.shape
    res = _geometry_axes(eqn, ins, transposed=False)
    residual = [v for v in ins[2:] if v.data and v.shape == tuple(out)]
    return tuple(
        union_axis([r, *(v.axes[a] for v in residual)], n) for a, (r, n) in enumerate(zip(res, out))
    )


def axes_dlref_conv_transpose(eqn, ins) -> tuple:
    """The kernels' transposed convolution (the input gradient of the forward conv)."""
    return tuple(_geometry_axes(eqn, ins, transposed=True))


# --------------------------------------------------------------------------------------------
# one rule per primitive: cost and label


def conv_cost(convention: str, n_out: int, c: int, taps: int, positions: int) -> int:
    """A convolution's cost from its output size, input channels per group and taps, in
    :func:`dlref.shapes.conv_flops`'s conventions (without bias)."""
    macs = n_out * c * taps
    if convention == "macs":
        return macs
    if convention == "flops":
        return 2 * macs
    maps = n_out // max(positions, 1)  # N · C_out: the study guide adds C − 1 per output map
    return maps * (c * positions * (2 * taps - 1) + (c - 1))


def cost_conv(eqn, ins, convention) -> int:
    dn = eqn.params["dimension_numbers"]
    w, out = eqn.invars[1].aval.shape, eqn.outvars[0].aval.shape
    positions = math.prod(out[a] for a in dn.out_spec[2:])
    taps = math.prod(w[a] for a in dn.rhs_spec[2:])
    return conv_cost(convention, math.prod(out), w[dn.rhs_spec[1]], taps, positions)


def cost_dot(eqn, ins, convention) -> int:
    (lc, _), _ = eqn.params["dimension_numbers"]
    c = math.prod(eqn.invars[0].aval.shape[a] for a in lc)
    n_out = math.prod(eqn.outvars[0].aval.shape)
    return {"macs": n_out * c, "flops": 2 * n_out * c, "seed": n_out * (2 * c - 1)}[convention]


def cost_reduce_window(eqn, ins, convention) -> int:
    if convention == "macs":
        return 0
    return math.prod(eqn.outvars[0].aval.shape) * (math.prod(eqn.params["window_dimensions"]) - 1)


def cost_reduce(eqn, ins, convention) -> int:
    if convention == "macs":
        return 0
    return math.prod(eqn.invars[0].aval.shape) - math.prod(eqn.outvars[0].aval.shape)


# Per-element cost of elementwise primitives that are not one operation
# (see dlref.shapes.activation_flops).
ELEMENTWISE_COST = {"logistic": 4}


def cost_elementwise(eqn, ins, convention) -> int:
    if convention == "macs":
        return 0
    n_out = math.prod(eqn.outvars[0].aval.shape)
    return n_out * ELEMENTWISE_COST.get(eqn.primitive.name, 1) * len(eqn.outvars)


def cost_free(eqn, ins, convention) -> int:
    return 0


def epilogue(eqn, ins) -> tuple[int, bool]:
    """The dlref_conv epilogue: how many (C_out,) vectors, and whether a residual is added."""
    out = tuple(eqn.outvars[0].aval.shape)
    extra = [v.aval.shape for v in eqn.invars[2:]]
    return sum(len(s) == 1 for s in extra), any(tuple(s) == out for s in extra)


def cost_dlref_conv(eqn, ins, convention) -> int:
    g = eqn.params["geometry"]
    x_shape = eqn.invars[0].aval.shape
    cost = conv_flops(
        g.c_in,
        g.c_out,
        tuple(g.kernel),
        tuple(g.in_sizes),
        stride=tuple(g.stride),
        padding=tuple(g.padding),
        dilation=tuple(g.dilation),
        groups=g.groups,
        batch=x_shape[0],
        bias=False,
        convention=convention,
    )
    vectors, residual = epilogue(eqn, ins)
    if convention != "macs":  # one operation per element per fused bias/scale/shift/residual
        cost += math.prod(eqn.outvars[0].aval.shape) * (vectors + residual)
    return cost


def cost_dlref_conv_transpose(eqn, ins, convention) -> int:
    """As ``lax.conv_general_dilated`` with ``lhs_dilation`` counts it: every output pixel
    takes every tap over ``C_out / groups`` channels of the dilated input."""
    g, out = eqn.params["geometry"], eqn.outvars[0].aval.shape
    positions = math.prod(out[1:-1])
    return conv_cost(
        convention, math.prod(out), g.c_out // g.groups, math.prod(g.kernel), positions
    )


def geometry_label(name: str, kernel, stride=(), dilation=(), groups: int = 1) -> str:
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


def label_conv(eqn, ins) -> str:
    p = eqn.params
    dn = p["dimension_numbers"]
    w = eqn.invars[1].aval.shape
    dilated = any(v != 1 for v in p["lhs_dilation"]) or ins[0].lhs_dilated
    name = "conv_transpose" if dilated else "conv"
    return geometry_label(
        name,
        [w[a] for a in dn.rhs_spec[2:]],
        p["window_strides"],
        p["rhs_dilation"],
        p["feature_group_count"],
    )


POOL_NAMES = {"reduce_window_max": "max_pool", "reduce_window_min": "min_pool"}


def label_reduce_window(eqn, ins) -> str:
    p = eqn.params
    spatial = [a for a, axis in enumerate(ins[0].axes) if axis_span(axis) is not None]
    spatial = spatial or [a for a, k in enumerate(p["window_dimensions"]) if k != 1] or [0]
    kind = POOL_NAMES.get(eqn.primitive.name, "sum_pool")
    return geometry_label(
        kind,
        [p["window_dimensions"][a] for a in spatial],
        [p["window_strides"][a] for a in spatial],
        [p["window_dilation"][a] for a in spatial],
    )


def label_dot(eqn, ins) -> str:
    return "dense" if not all(v.data for v in ins) else "dot"


GLOBAL_NAMES = {
    "reduce_max": "global_max_pool",
    "reduce_min": "global_min_pool",
    "reduce_sum": "global_sum_pool",
}


def label_reduce(eqn, ins) -> str:
    x, axes = ins[0], eqn.params["axes"]
    spatial = [a for a, axis in enumerate(x.axes) if any(isinstance(s, Span) for _, s in axis)]
    name = eqn.primitive.name
    if spatial and set(spatial) <= set(axes) and name in GLOBAL_NAMES:
        return GLOBAL_NAMES[name]
    return name


def label_dlref_conv(eqn, ins) -> str:
    g = eqn.params["geometry"]
    return geometry_label("conv", g.kernel, g.stride, g.dilation, g.groups)


def label_dlref_conv_transpose(eqn, ins) -> str:
    g = eqn.params["geometry"]
    name = "conv_transpose" if any(v != 1 for v in g.stride) else "conv"
    return geometry_label(name, g.kernel, (1,) * len(g.kernel), g.dilation, g.groups)


def tags_dlref_conv(eqn, ins) -> list[str]:
    """The fused epilogue as tags: one (C_out,) vector is a bias, two a folded BN (scale and
    shift), three both; a residual operand is an add; an ``activation`` parameter names its
    activation."""
    vectors, residual = epilogue(eqn, ins)
    tags = {0: [], 1: ["bias"], 2: ["bn"]}.get(vectors, ["bias", "bn"])
    tags += ["add"] if residual else []
    act = eqn.params.get("activation")
    if isinstance(act, str) and act.lower() not in ("", "none", "identity", "linear"):
        tags.append(act)
    return tags


def label_prim(eqn, ins) -> str:
    return eqn.primitive.name


@dataclasses.dataclass(frozen=True)
class Rule:
    """How the walk treats one primitive.

    Attributes:
      role: ``"free"`` (moves or relabels data: no cost, no row of its own), ``"layer"``
        (starts a row: convolution, dense, pooling window, reduction), ``"elementwise"``
        (joins the row whose output it continues, as a tag: bias, BN, activation) or
        ``"call"`` (a sub-jaxpr, walked in place).
      axes: ``(eqn, ins) -> axes`` of the output (see :class:`Value`).
      cost: ``(eqn, ins, convention) -> int``.
      label: ``(eqn, ins) -> str``, the row label of a layer.
      tags: ``(eqn, ins) -> list``, the tags a layer carries in itself (a fused epilogue).
      carries: for free ops: the output is still the row's output (a reshape, a cast), so
        the row shows it.
      jaxpr: for calls: the parameter holding the sub-jaxpr.
    """

    role: str
    axes: Callable = axes_elementwise
    cost: Callable = cost_elementwise
    label: Callable = label_prim
    tags: Callable | None = None
    carries: bool = False
    jaxpr: str = ""


ELEMENTWISE = Rule("elementwise")
CARRY = Rule("free", cost=cost_free, carries=True)
MOVE = Rule("free", cost=cost_free)

RULES: dict[str, Rule] = {
    # layers
    "conv_general_dilated": Rule("layer", axes_conv, cost_conv, label_conv),
    "dlref_conv": Rule(
        "layer", axes_dlref_conv, cost_dlref_conv, label_dlref_conv, tags_dlref_conv
    ),
    "dlref_conv_transpose": Rule(
        "layer", axes_dlref_conv_transpose, cost_dlref_conv_transpose, label_dlref_conv_transpose
    ),
    "dot_general": Rule("layer", axes_dot, cost_dot, label_dot),
    **{
        p: Rule("layer", axes_reduce_window, cost_reduce_window, label_reduce_window)
        for p in ("reduce_window_max", "reduce_window_min", "reduce_window_sum", "reduce_window")
    },
    **{
        p: Rule("layer", axes_reduce, cost_reduce, label_reduce)
        for p in (
            "reduce_sum",
            "reduce_max",
            "reduce_min",
            "reduce_prod",
            "reduce_and",
            "reduce_or",
            "argmax",
            "argmin",
        )
    },
    "concatenate": Rule("layer", axes_concatenate, cost_free),
    "stack": Rule("layer", axes_stack, cost_free),
    # data movement that carries a row's output on
    "reshape": dataclasses.replace(CARRY, axes=axes_reshape),
    "broadcast_in_dim": dataclasses.replace(CARRY, axes=axes_broadcast),
    "squeeze": dataclasses.replace(CARRY, axes=axes_squeeze),
    "transpose": dataclasses.replace(CARRY, axes=axes_transpose),
    **{
        p: CARRY
        for p in (
            "convert_element_type",
            "copy",
            "copy_p",
            "reduce_precision",
            "sharding_constraint",
            "device_put",
            "optimization_barrier",
        )
    },
    # data movement that makes something new: padding for, and taps of, the next window
    "pad": dataclasses.replace(MOVE, axes=axes_pad),
    "slice": dataclasses.replace(MOVE, axes=axes_slice),
    **{p: MOVE for p in ("dynamic_slice", "gather", "rev", "iota", "dynamic_update_slice")},
    # sub-jaxprs
    "jit": Rule("call", jaxpr="jaxpr"),
    "pjit": Rule("call", jaxpr="jaxpr"),
    "closed_call": Rule("call", jaxpr="call_jaxpr"),
    "core_call": Rule("call", jaxpr="call_jaxpr"),
    "remat2": Rule("call", jaxpr="jaxpr"),
    "checkpoint": Rule("call", jaxpr="jaxpr"),
    "custom_jvp_call": Rule("call", jaxpr="call_jaxpr"),
    "custom_vjp_call": Rule("call", jaxpr="call_jaxpr"),
    "custom_vjp_call_jaxpr": Rule("call", jaxpr="fun_jaxpr"),
    "scan": Rule("call", jaxpr="jaxpr"),  # walked once, its costs counted `length` times
}
