r"""``summary``: a per-layer table (shapes, receptive fields, parameters, FLOPs) of any JAX
function, read from its jaxpr.

The arithmetic it applies per layer lives in :mod:`dlref.shapes`. This module walks the jaxpr
once, in order (:class:`_Walker`), with one rule per primitive (``RULES`` in
``dlref/_summary_rules.py``), which says how the primitive moves what the walk knows about
each variable (per axis, the input pixels its first unit sees; off the data path, which
parameter arrays it is made of), what it costs and how its row is labelled, and its role:

* ``free`` ops move or relabel data (reshape, transpose, pad, slice, cast);
* ``layer`` ops (convolutions, dense layers, pooling windows, reductions) start a table row;
* ``elementwise`` ops join the row whose output they continue (bias, BN, activation), or
  start one of their own (a residual add);
* ``call`` ops are walked in place (``jit``, ``checkpoint``, ``custom_jvp``, ``custom_vjp``;
  a ``scan`` once, its costs counted per step).

A *window* is a layer written as a loop over kernel taps: strided slices of one padded input
combined by ``+`` or ``max`` (dlref's reference convolution and its pooling), or stacked and
contracted (im2col). The slices are *taps* of their input; the ops that combine taps of one
input form one row (:class:`_Window`), labelled and costed from the taps it combined, so it
reads as the one-primitive form (``lax.conv_general_dilated``, ``lax.reduce_window``) does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core

from dlref._checks import check_choice, check_int
from dlref._summary_rules import (
    ELEMENTWISE,
    RULES,
    TAPS,
    Span,
    Tap,
    Value,
    axis_span,
    conv_cost,
    fresh,
    geometry_label,
)
from dlref.shapes import CONVENTIONS

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
# rows


@dataclasses.dataclass(eq=False)
class _Window:
    """The taps of one input that a row combines, and the work it took."""

    base: Value
    keys: set = dataclasses.field(default_factory=set)
    stride: tuple = ()
    macs: int = 0  # multiply-accumulates with parameters (a convolution)
    groups: int = 1  # batch dimensions of its contractions (a grouped convolution's groups)
    combine: list = dataclasses.field(default_factory=list)  # primitives that joined taps

    def kind(self) -> str:
        if self.macs:
            return "conv_transpose" if self.base.lhs_dilated else "conv"
        for prim, name in (
            ("max", "max_pool"),
            ("reduce_max", "max_pool"),
            ("min", "min_pool"),
            ("reduce_min", "min_pool"),
            ("add", "sum_pool"),
            ("reduce_sum", "sum_pool"),
        ):
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
    end: Value | None = None  # the latest value the row computed
    shown: Value | None = None  # the value the table shows (shape, field)
    stamp: int = 0  # counts the row's outputs: a value is the row's output if stamps match
    window: _Window | None = None


def _unstack(v: Value) -> Value:
    """One step of a scanned input: the leading (time) axis dropped."""
    if not v.data:
        return Value(v.shape[1:], v.dtype, sources=v.sources, const=v.const)
    return Value(v.shape[1:], v.dtype, v.axes[1:], row=v.row, stamp=v.stamp, view=v.view)


def _stack(v: Value, shape: tuple) -> Value:
    """A scan's stacked output: a new leading axis on each step's value."""
    if not v.data:
        return Value(shape, v.dtype, sources=v.sources, const=None)
    axes = (((shape[0], None),), *v.axes) if len(shape) == len(v.shape) + 1 else fresh(shape)
    return Value(shape, v.dtype, axes, row=v.row, stamp=v.stamp, view=v.view)


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
    return axes if shape == outs[0][1] else fresh(shape)


def _is_param(v: Value) -> bool:
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

    def source(self, aval: Any, trainable: bool = True) -> Value:
        """A parameter array (an argument, or a floating constant closed over)."""
        shape = tuple(aval.shape)
        if not jnp.issubdtype(aval.dtype, jnp.floating):
            return Value(shape, aval.dtype)
        self.sources.append((math.prod(shape), trainable))
        return Value(shape, aval.dtype, sources=frozenset([len(self.sources) - 1]))

    def run(self, jaxpr: Any, env: dict) -> None:
        for eqn in jaxpr.eqns:
            self.eqn(eqn, env)

    @staticmethod
    def read(env: dict, v: Any) -> Value:
        if isinstance(v, jex_core.Literal):
            val = np.asarray(v.val)
            const = float(val) if val.ndim == 0 and val.dtype.kind in "biuf" else None
            return Value(tuple(val.shape), val.dtype, const=const)
        return env[v]

    def eqn(self, eqn: Any, env: dict) -> None:
        rule = RULES.get(eqn.primitive.name, ELEMENTWISE)
        ins = [self.read(env, v) for v in eqn.invars]
        if rule.role == "call" and self.call(eqn, rule, ins, env):
            return
        data = [v for v in ins if v.data]
        outs = [(o, tuple(o.aval.shape), o.aval.dtype) for o in eqn.outvars]
        if not data:  # parameters, constants, index arithmetic: off the data path
            src = frozenset().union(*(v.sources for v in ins))
            const = ins[0].const if len(ins) == 1 and rule.role == "free" else None
            for o, shape, dtype in outs:
                env[o] = Value(shape, dtype, sources=src, const=const)
            return
        if self.is_identity(eqn, ins, data):
            env[eqn.outvars[0]] = data[0]
            return
        axes = rule.axes(eqn, ins)
        if rule.role == "free":
            x, prim = data[0], eqn.primitive.name
            tap = self.tap_of(eqn, x, axes) if prim == "slice" else x.tap
            dilated = x.lhs_dilated or (
                prim == "pad" and any(interior for _, _, interior in eqn.params["padding_config"])
            )
            view = x.view and rule.carries
            for o, shape, dtype in outs:
                env[o] = Value(
                    shape,
                    dtype,
                    _axes_for(shape, outs, axes),
                    row=x.row,
                    stamp=x.stamp,
                    view=view,
                    tap=tap,
                    lhs_dilated=dilated,
                )
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
            ins = [
                v if tuple(iv.aval.shape) == v.shape else _unstack(v)
                for iv, v in zip(inner.invars, ins)
            ]
            # a floating carry joins the data path after the first step (an RNN's state)
            ins = [
                Value(v.shape, v.dtype, fresh(v.shape))
                if k in _scan_carries(eqn.params)
                and not v.data
                and jnp.issubdtype(v.dtype, jnp.floating)
                else v
                for k, v in enumerate(ins)
            ]
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
    def tap_of(eqn, x: Value, axes) -> Tap:
        """A slice is a tap of ``x``: its offset into ``x`` per spatial span, and its stride."""
        keys, stride = [], []
        for axis, out_axis in zip(x.axes, axes):
            f, g = axis_span(axis), axis_span(out_axis)
            if f is not None and g is not None:
                keys.append(round((g.lo - f.lo) / f.jump))
                stride.append(round(g.jump / f.jump))
        return Tap(x, frozenset([tuple(keys)]), True, tuple(stride))

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

    def output(self, row: _Row, eqn, axes, env, tap: Tap | None = None) -> None:
        row.stamp += 1
        outs = [(o, tuple(o.aval.shape)) for o in eqn.outvars]
        for o, shape in outs:
            env[o] = Value(
                shape,
                o.aval.dtype,
                _axes_for(shape, outs, axes),
                row=row,
                stamp=row.stamp,
                view=True,
                tap=tap,
            )
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
            axes = tuple(tuple((n, None if sp == TAPS else sp) for n, sp in ax) for ax in axes)
        self.output(row, eqn, axes, env, Tap(base, keys, single, taps[0].stride))

    def layer_or_tag(self, eqn, rule, ins, data, axes, env) -> None:
        cur = self.current
        continues = (
            len(data) == 1 and cur is not None and data[0].row is cur and data[0].stamp == cur.stamp
        )
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
        positions = math.prod(n for axis in end.axes for n, s in axis if isinstance(s, Span))
        if w.macs:
            c = w.macs // (n_out * taps) if w.macs % (n_out * taps) == 0 else w.macs // n_out
            taps = taps if w.macs % (n_out * taps) == 0 else 1
            return conv_cost(self.convention, n_out, c, taps, positions)
        return 0 if self.convention == "macs" else n_out * (taps - 1)

    def finish(self) -> tuple[SummaryRow, ...]:
        rows = []
        for r in self.rows:
            op, tags = r.label, list(r.tags)
            flops = r.flops
            if r.window is not None:
                kernel, dilation = r.window.geometry()
                op = geometry_label(
                    r.window.kind(), kernel, r.window.stride, dilation, r.window.groups
                )
                flops += self.window_cost(r)
            if {"shift", "scale", "bias"} <= set(tags):
                i = tags.index("shift")
                tags = (
                    tags[:i] + ["bn"] + [t for t in tags[i:] if t not in ("shift", "scale", "bias")]
                )
            if "mean" in tags and (
                op.startswith("sum_pool") or op.endswith("sum_pool") or op == "reduce_sum"
            ):
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
    if not callable(fn):
        raise TypeError(f"{op}: fn must be callable, got {fn!r:.80}")
    check_choice(convention, CONVENTIONS, "convention", op)
    if print_fn is not None and not callable(print_fn):
        raise TypeError(f"{op}: print_fn must be callable or None, got {print_fn!r:.80}")
    if spatial_axes is not None:
        if isinstance(spatial_axes, str) or not isinstance(spatial_axes, Sequence):
            raise TypeError(f"{op}: spatial_axes must be a tuple of ints, got {spatial_axes!r}")
        for a in spatial_axes:
            check_int(a, "spatial_axes", op)
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
    if any(math.prod(jnp.shape(x)) == 0 for x in data_leaves):
        raise ValueError(f"{op}: the data argument must not be empty, got an array of size 0")
    try:
        closed = jax.make_jaxpr(fn)(*example_args)
    except (TypeError, ValueError) as e:  # example_args that fn refuses: say who refused
        raise type(e)(f"{op}: tracing fn on example_args raised {type(e).__name__}: {e}") from e
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
                    ((n, Span(1, 0, 0) if a in spatial else None),) for a, n in enumerate(shape)
                )
                env[v] = Value(shape, v.aval.dtype, axes)
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
