r"""``summary``: a per-layer table (shapes, receptive fields, parameters, FLOPs) of any JAX
function, read from its jaxpr.

The arithmetic it applies per layer lives in :mod:`dlref.shapes`; this module walks the jaxpr.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as _jcore

from dlref.shapes import _check_convention, _prod

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
# Per-element cost of elementwise primitives that are not one operation
# (see dlref.shapes.activation_flops).
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
      window composes as in :func:`dlref.shapes.receptive_field`, and where paths join (a residual
      ``add``) the intervals are united — the largest field over paths, with misaligned
      branches handled — so size ``= hi − lo + 1``;
    * parameters: every other input array (and every closed-over constant) reaching the data
      path — conv and dense weights, biases, BN scales and statistics — is counted once,
      at the layer that uses it first; arrays in ``non_trainable_argnums`` are reported
      apart;
    * cost: ``conv_general_dilated`` and ``dot_general`` as in
      :func:`dlref.shapes.conv_flops`; under ``"flops"`` and ``"seed"`` also pooling windows
      (``K − 1`` per output), reductions,
      and one operation per element of every other elementwise op (4 for ``logistic``);
      under ``"macs"`` only the multiply–accumulates;
    * rows: each convolution, dense layer, pooling window or reduction starts a row and the
      elementwise ops that continue its output (bias, BN, activation) join it; an op whose
      input is not the current row's output (a residual add) starts a new row.

    ``"flops"`` equals XLA's ``cost_analysis()`` ``flops + transcendentals`` for such
    networks, less XLA's saving on padding taps (see :func:`dlref.shapes.conv_flops`).

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
