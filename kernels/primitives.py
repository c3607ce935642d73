r"""The convolution family as JAX primitives, built the way ``lax.conv_general_dilated`` is.

Three primitives, each carrying the *forward* convolution's :class:`ConvGeometry` (param
``geometry``), the implementation (``impl``: ``"reference"``, ``"im2col"`` or ``"pallas"``)
and its resolved options (``options``):

* ``dlref_conv(x, w, *epilogue) -> [y]`` (or ``[y, u]``): the convolution
  ``y = conv(x, w)``, optionally followed by a fused epilogue (param ``epilogue``:
  ``y = act((conv + b)·γ + β + r)``; with ``emit_pre`` the pre-scale ``u = conv + b`` too).
  Operand 0 is ``x: (N, *in, C_in)``, operand 1 ``w: (*k, C_in/G, C_out)``, then the present
  epilogue operands in the order bias, scale, shift, residual.
* ``dlref_conv_transpose(dy, w) -> dx``: the input gradient of ``dlref_conv`` (a transposed
  convolution): ``⟨conv(x, w), dy⟩ = ⟨x, conv_transpose(dy, w)⟩``.
* ``dlref_conv_weight_grad(x, dy) -> dw``: the weight gradient:
  ``⟨conv(x, w), dy⟩ = ⟨w, weight_grad(x, dy)⟩``.

Rules (so every transformation composes, to any order):

* JVP: the convolution is bilinear, :math:`d\,\mathrm{conv}(x, w) = \mathrm{conv}(dx, w) +
  \mathrm{conv}(x, dw)`; the epilogue's tangent is written in jnp around the fused
  primitive's outputs ``y`` and ``u`` (the primal stays one fused kernel).
* Transpose: each primitive is linear in either operand, and its transposes are the other two
  members (``conv`` ↦ ``conv_transpose``, ``weight_grad``; ``conv_transpose`` ↦ ``conv``,
  ``weight_grad``; ``weight_grad`` ↦ ``conv_transpose``, ``conv``): a gradient of any order
  runs the implementation's own kernels.
* Batching: a vmapped axis is folded into the batch (when the kernel is not batched), into the
  groups (everything batched), or into the input or output channels (the kernel and one
  activation batched); the same primitive then runs once, on the larger problem.
* Lowering: ``mlir.lower_fun`` of the registered implementation (:func:`register_impl`). An
  implementation marked ``partition=True`` (the Pallas kernels, opaque to XLA's SPMD
  partitioner) is wrapped in ``custom_partitioning``: with the batch sharded, each device runs
  the kernel on its shard (the weight gradient sums the shards' partial sums with one
  ``psum``) and nothing is all-gathered.

``dlref_conv`` has ``multiple_results=True`` (one output unless ``emit_pre``). The family
exists twice, with the same names and rules (see the registration at the end): read a jaxpr by
``eqn.primitive.name`` (or :func:`is_conv_primitive`), not by identity.

This module imports ``dlref._checks`` and ``dlref.kernels.blocks`` only.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from dlref import _checks
from dlref.kernels.blocks import ConvGeometry

__all__ = [
    "ACTIVATIONS",
    "ConvImpl",
    "Epilogue",
    "conv",
    "conv_p",
    "conv_transpose",
    "conv_transpose_p",
    "is_conv_primitive",
    "register_impl",
    "weight_grad",
    "weight_grad_p",
]

ACTIVATIONS = ("none", "relu", "leaky_relu", "sigmoid", "tanh")


@dataclasses.dataclass(frozen=True)
class Epilogue:
    """The fused epilogue of ``dlref_conv`` (a hashable primitive parameter).

    Attributes:
      has: which of (bias, scale, shift, residual) are operands.
      activation: one of :data:`ACTIVATIONS`.
      negative_slope: ``leaky_relu``'s slope.
      out_dtype: the output dtype name; ``None`` for the input dtype.
      emit_pre: also return ``u = conv + bias`` (what the JVP needs).
    """

    has: tuple[bool, bool, bool, bool] = (False, False, False, False)
    activation: str = "none"
    negative_slope: float = 0.01
    out_dtype: str | None = None
    emit_pre: bool = False

    @property
    def plain(self) -> bool:
        """A bare convolution: no operand, no activation, no second output."""
        return not any(self.has) and self.activation == "none" and not self.emit_pre

    def dtype(self, x_dtype) -> jnp.dtype:
        return jnp.dtype(x_dtype if self.out_dtype is None else self.out_dtype)


PLAIN = Epilogue()


@dataclasses.dataclass(frozen=True)
class ConvImpl:
    """An implementation of the family, as :func:`register_impl` takes it.

    Attributes:
      name: the ``impl`` parameter value.
      forward: ``(x, w, geometry, options) -> y`` (``y`` in ``x``'s dtype).
      input_grad: ``(dy, w, geometry, options) -> dx``; ``None``: the linear transpose of
        ``forward`` (jax's autodiff of it).
      weight_grad: ``(x, dy, geometry, options) -> dw``; ``None``: likewise.
      fused_forward: ``(x, w, bias, scale, shift, residual, geometry, options, epilogue) ->
        [y] or [y, u]``; ``None``: ``forward`` then the epilogue in jnp.
      partition: wrap the lowering in ``custom_partitioning`` (batch-sharded, never gathered).
    """

    name: str
    forward: Callable
    input_grad: Callable | None = None
    weight_grad: Callable | None = None
    fused_forward: Callable | None = None
    partition: bool = False


_IMPLS: dict[str, ConvImpl] = {}


def register_impl(impl: ConvImpl) -> None:
    """Register (or replace) an implementation of the convolution family under ``impl.name``.

    Args:
      impl: a :class:`ConvImpl`.

    Returns:
      ``None``.
    """
    _IMPLS[impl.name] = impl


def _get_impl(name: str) -> ConvImpl:
    try:
        return _IMPLS[name]
    except KeyError:
        raise NotImplementedError(
            f"dlref_conv: no implementation {name!r} is registered (import the module that "
            f"defines it, e.g. dlref.kernels.pallas_igemm); registered: {sorted(_IMPLS)}"
        ) from None


# ---------------------------------------------------------------------------------------------
# The epilogue in jnp (used around the primitive: tangents, batching fallbacks, and impls
# without a fused kernel).


def activation_fn(activation: str, negative_slope: float) -> Callable:
    """The activation as a jnp function (relu'(0) = 0, leaky_relu'(0) = 1 under jax AD)."""
    if activation == "relu":
        return jax.nn.relu
    if activation == "leaky_relu":
        return functools.partial(jax.nn.leaky_relu, negative_slope=negative_slope)
    if activation == "sigmoid":
        return jax.nn.sigmoid
    if activation == "tanh":
        return jnp.tanh
    return lambda z: z


def apply_epilogue(conv_out, bias, scale, shift, residual, epilogue: Epilogue, x_dtype):
    """``[y]`` or ``[y, u]`` from a convolution's output, in jnp (accumulation dtype)."""
    out_dtype = epilogue.dtype(x_dtype)
    acc = _checks.accumulation_dtype(out_dtype)
    u = conv_out.astype(acc)
    if bias is not None:
        u = u + bias.astype(acc)
    z = u
    if scale is not None:
        z = z * scale.astype(acc)
    if shift is not None:
        z = z + shift.astype(acc)
    if residual is not None:
        z = z + residual.astype(acc)
    y = activation_fn(epilogue.activation, epilogue.negative_slope)(z).astype(out_dtype)
    return [y, u.astype(out_dtype)] if epilogue.emit_pre else [y]


def _split(vecs, has):
    it = iter(vecs)
    return [next(it) if h else None for h in has]


# ---------------------------------------------------------------------------------------------
# The primitives and their abstract evaluation.


@dataclasses.dataclass(frozen=True, eq=False)
class _Family:
    """The three primitives, bound together: every rule of a member binds its own family."""

    conv: Primitive
    transpose: Primitive
    wgrad: Primitive

    def roles(self, prim: Primitive) -> tuple[str, str, str]:
        """The roles (x, w or y) of ``prim``'s two operands and of its result."""
        if prim is self.conv:
            return ("x", "w", "y")
        if prim is self.transpose:
            return ("y", "w", "x")
        return ("x", "y", "w")


def _new_family() -> _Family:
    fam = _Family(
        Primitive("dlref_conv"),
        Primitive("dlref_conv_transpose"),
        Primitive("dlref_conv_weight_grad"),
    )
    fam.conv.multiple_results = True
    return fam


def _conv_abstract(x, w, *vecs, geometry, impl, options, epilogue):
    del w, vecs, impl, options
    aval = jax.core.ShapedArray(geometry.y_shape(x.shape[0]), epilogue.dtype(x.dtype))
    return [aval, aval] if epilogue.emit_pre else [aval]


def _conv_transpose_abstract(dy, w, *, geometry, impl, options):
    del w, impl, options
    return jax.core.ShapedArray(geometry.x_shape(dy.shape[0]), dy.dtype)


def _weight_grad_abstract(x, dy, *, geometry, impl, options):
    del dy, impl, options
    return jax.core.ShapedArray(geometry.w_shape(), x.dtype)


@functools.lru_cache(maxsize=512)
def _jitted(prim: Primitive, params: tuple) -> Callable:
    kwargs = dict(params)
    return jax.jit(lambda *args: prim.bind(*args, **kwargs))


def _eager(prim: Primitive) -> Callable:
    """Eager application: one compiled program per (primitive, parameters)."""

    def impl(*args, **params):
        return _jitted(prim, tuple(sorted(params.items())))(*args)

    return impl


# ---------------------------------------------------------------------------------------------
# Binding helpers (what the public functions call).


def conv(
    x,
    w,
    geometry: ConvGeometry,
    *,
    impl: str,
    options: Any = None,
    bias=None,
    scale=None,
    shift=None,
    residual=None,
    epilogue: Epilogue = PLAIN,
) -> list:
    """Bind ``dlref_conv``; returns ``[y]`` (``[y, u]`` with ``epilogue.emit_pre``)."""
    vecs = [v for v in (bias, scale, shift, residual) if v is not None]
    has = tuple(v is not None for v in (bias, scale, shift, residual))
    epilogue = dataclasses.replace(epilogue, has=has)
    return _family(impl).conv.bind(
        x, w, *vecs, geometry=geometry, impl=impl, options=options, epilogue=epilogue
    )


def conv_transpose(dy, w, geometry: ConvGeometry, *, impl: str, options: Any = None):
    """Bind ``dlref_conv_transpose``: the input gradient ``dx`` of ``dlref_conv``."""
    return _family(impl).transpose.bind(dy, w, geometry=geometry, impl=impl, options=options)


def weight_grad(x, dy, geometry: ConvGeometry, *, impl: str, options: Any = None):
    """Bind ``dlref_conv_weight_grad``: the kernel gradient ``dw`` of ``dlref_conv``."""
    return _family(impl).wgrad.bind(x, dy, geometry=geometry, impl=impl, options=options)


def _plain(fam, a, b, geometry, impl, options):
    return fam.conv.bind(a, b, geometry=geometry, impl=impl, options=options, epilogue=PLAIN)[0]


# ---------------------------------------------------------------------------------------------
# JVP and transpose rules.


def _nonzero(t) -> bool:
    return type(t) is not ad.Zero


def _conv_jvp(fam, primals, tangents, *, geometry, impl, options, epilogue):
    x, w, *vecs = primals
    dx, dw, *dvecs = tangents
    terms = []
    if _nonzero(dx):
        terms.append(_plain(fam, dx, w, geometry, impl, options))
    if _nonzero(dw):
        terms.append(_plain(fam, x, dw, geometry, impl, options))
    dconv = functools.reduce(jnp.add, terms) if terms else None
    if epilogue.plain:
        outs = fam.conv.bind(
            *primals, geometry=geometry, impl=impl, options=options, epilogue=epilogue
        )
        return outs, [dconv if dconv is not None else ad.Zero.from_primal_value(outs[0])]
    y, u = fam.conv.bind(
        *primals,
        geometry=geometry,
        impl=impl,
        options=options,
        epilogue=dataclasses.replace(epilogue, emit_pre=True),
    )
    out_dtype = y.dtype
    acc = _checks.accumulation_dtype(out_dtype)
    bias, scale, shift, residual = _split(vecs, epilogue.has)
    dbias, dscale, dshift, dres = _split(dvecs, epilogue.has)
    du = jnp.zeros(u.shape, acc) if dconv is None else dconv.astype(acc)
    if bias is not None and _nonzero(dbias):
        du = du + dbias.astype(acc)
    z, dz = u.astype(acc), du
    if scale is not None:
        dz = dz * scale.astype(acc)
        if _nonzero(dscale):
            dz = dz + z * dscale.astype(acc)
        z = z * scale.astype(acc)
    if shift is not None:
        z = z + shift.astype(acc)
        if _nonzero(dshift):
            dz = dz + dshift.astype(acc)
    if residual is not None:
        z = z + residual.astype(acc)
        if _nonzero(dres):
            dz = dz + dres.astype(acc)
    act = activation_fn(epilogue.activation, epilogue.negative_slope)
    _, dy = jax.jvp(act, (z,), (dz,))
    if epilogue.emit_pre:
        return [y, u], [dy.astype(out_dtype), du.astype(out_dtype)]
    return [y], [dy.astype(out_dtype)]


def _cast_to(ct, like):
    dtype = like.aval.dtype
    return ct if ct.dtype == dtype else ct.astype(dtype)


def _conv_transpose_rule(fam, cts, x, w, *vecs, geometry, impl, options, epilogue):
    if not epilogue.plain or vecs:
        raise NotImplementedError("dlref_conv: only the bare convolution is linear")
    (ct,) = cts
    if ad.is_undefined_primal(x) == ad.is_undefined_primal(w):
        raise NotImplementedError("dlref_conv is bilinear: transpose needs one constant operand")
    if ad.is_undefined_primal(x):
        if type(ct) is ad.Zero:
            return [ad.Zero(x.aval.to_ct_aval()), None]
        ct = _cast_to(ct, x)
        return [fam.transpose.bind(ct, w, geometry=geometry, impl=impl, options=options), None]
    if type(ct) is ad.Zero:
        return [None, ad.Zero(w.aval.to_ct_aval())]
    ct = _cast_to(ct, w)
    return [None, fam.wgrad.bind(x, ct, geometry=geometry, impl=impl, options=options)]


def _cast_result(rule, which: int):
    """A bilinear transpose rule whose result takes the undefined operand's dtype."""

    def wrapped(ct, a, b, **params):
        out = rule(ct, a, b, **params)
        dtype = (a, b)[which].aval.dtype
        return out if out.dtype == dtype else out.astype(dtype)

    return wrapped


# ---------------------------------------------------------------------------------------------
# Batching: fold the vmapped axis into the batch, the groups or the channels.
#
# Each primitive relates three tensors: x (N, *in, C_in), w (*k, C_in/G, C_out) and
# y (N, *out, C_out); two are operands, one the result (batched if an operand is). By which
# of them carry the vmapped axis (size B):
#   {x, y}     "batch":  B folded into N; the geometry is unchanged.
#   {x, w, y}  "groups": B·G groups: channels (b, g, c), kernel outputs (b, g, o).
#   {x, w}     "cin":    C_in·B: x channels (g, b, c), kernel rows (b, c) within a group.
#   {w, y}     "cout":   C_out·B: y channels (g, b, o), kernel columns likewise.


def _fold_mode(batched: set[str]) -> str:
    if "w" not in batched:
        return "batch"
    if batched == {"x", "w", "y"}:
        return "groups"
    return "cin" if "x" in batched else "cout"


def _fold_geometry(geo: ConvGeometry, mode: str, b: int) -> ConvGeometry:
    if mode == "groups":
        return geo._replace(groups=geo.groups * b, c_in=geo.c_in * b, c_out=geo.c_out * b)
    if mode == "cin":
        return geo._replace(c_in=geo.c_in * b)
    if mode == "cout":
        return geo._replace(c_out=geo.c_out * b)
    return geo


def _fold(role: str, a, mode: str, geo: ConvGeometry):
    """``a`` with the vmapped axis at 0 -> the folded operand of the primitive."""
    b, g = a.shape[0], geo.groups
    if mode == "batch":
        return a.reshape(b * a.shape[1], *a.shape[2:])
    if role == "w":
        k = a.shape[1:-2]
        cg, co = a.shape[-2:]
        nk = len(k)
        if mode == "groups":  # (B, *k, Cg, O) -> (*k, Cg, B·O)
            return jnp.moveaxis(a, 0, -2).reshape(*k, cg, b * co)
        if mode == "cin":  # (B, *k, Cg, O) -> (*k, B·Cg, O)
            return jnp.moveaxis(a, 0, nk).reshape(*k, b * cg, co)
        # "cout": (B, *k, Cg, G, O/G) -> (*k, Cg, G, B, O/G)
        a = a.reshape(b, *k, cg, g, co // g)
        return jnp.moveaxis(a, 0, -2).reshape(*k, cg, g * b * (co // g))
    lead, c = a.shape[1:-1], a.shape[-1]
    if mode == "groups":  # (B, N, *s, C) -> (N, *s, B·C)
        return jnp.moveaxis(a, 0, -2).reshape(*lead, b * c)
    # "cin" (role x) or "cout" (role y): channels (g, b, c)
    a = a.reshape(b, *lead, g, c // g)
    return jnp.moveaxis(a, 0, -2).reshape(*lead, g * b * (c // g))


def _unfold(role: str, a, mode: str, geo: ConvGeometry, b: int):
    """The inverse of :func:`_fold` for the result; the vmapped axis comes out at 0."""
    g = geo.groups
    if mode == "batch":
        return a.reshape(b, a.shape[0] // b, *a.shape[1:])
    if role == "w":
        k = a.shape[:-2]
        nk = len(k)
        if mode == "groups":
            cg, co = a.shape[-2], a.shape[-1] // b
            return jnp.moveaxis(a.reshape(*k, cg, b, co), -2, 0)
        if mode == "cin":
            cg, co = a.shape[-2] // b, a.shape[-1]
            return jnp.moveaxis(a.reshape(*k, b, cg, co), nk, 0)
        cg, og = a.shape[-2], a.shape[-1] // (g * b)
        a = jnp.moveaxis(a.reshape(*k, cg, g, b, og), -2, 0)
        return a.reshape(b, *k, cg, g * og)
    lead = a.shape[:-1]
    if mode == "groups":
        return jnp.moveaxis(a.reshape(*lead, b, a.shape[-1] // b), -2, 0)
    cg = a.shape[-1] // (g * b)
    a = jnp.moveaxis(a.reshape(*lead, g, b, cg), -2, 0)
    return a.reshape(b, *lead, g * cg)


def _batch_bilinear(fam, prim, a, b_, da, db, size, params, epilogue=None):
    """Batch a bare member of the family: fold, bind once, unfold."""
    roles = fam.roles(prim)
    a = a if da is None else jnp.moveaxis(a, da, 0)
    b_ = b_ if db is None else jnp.moveaxis(b_, db, 0)
    batched = {r for r, d in zip(roles[:2], (da, db), strict=True) if d is not None}
    batched.add(roles[2])
    mode = _fold_mode(batched)
    geo = params["geometry"]
    args = [
        _fold(r, v, mode, geo) if d is not None else v
        for r, v, d in zip(roles[:2], (a, b_), (da, db), strict=True)
    ]
    new = dict(params, geometry=_fold_geometry(geo, mode, size))
    if epilogue is not None:
        out = prim.bind(*args, epilogue=epilogue, **new)[0]
    else:
        out = prim.bind(*args, **new)
    return _unfold(roles[2], out, mode, geo, size)


def _conv_batch(fam, axis_data, vals, dims, *, geometry, impl, options, epilogue):
    size = axis_data.size
    params = dict(geometry=geometry, impl=impl, options=options)
    x, w, *vecs = vals
    dx, dw, *dvecs = dims
    n_out = 2 if epilogue.emit_pre else 1
    if all(d is None for d in dims):
        return fam.conv.bind(*vals, epilogue=epilogue, **params), [None] * n_out
    if epilogue.plain:
        return [_batch_bilinear(fam, fam.conv, x, w, dx, dw, size, params, PLAIN)], [0]
    bias, scale, shift, residual = _split(vecs, epilogue.has)
    dbias, dscale, dshift, dres = _split(dvecs, epilogue.has)
    if dw is None and all(d is None for d in (dbias, dscale, dshift)):
        # The kernel and the vectors are shared: fold into the batch, keep the fused kernel.
        xb = jnp.moveaxis(x, dx, 0) if dx is not None else jnp.broadcast_to(x, (size, *x.shape))
        if residual is not None:
            if dres is None:
                residual = jnp.broadcast_to(residual, (size, *residual.shape))
            else:
                residual = jnp.moveaxis(residual, dres, 0)
            residual = residual.reshape(-1, *residual.shape[2:])
        operands = [v for v in (bias, scale, shift, residual) if v is not None]
        outs = fam.conv.bind(
            xb.reshape(-1, *xb.shape[2:]), w, *operands, epilogue=epilogue, **params
        )
        return [o.reshape(size, -1, *o.shape[1:]) for o in outs], [0] * n_out
    # Otherwise: the batched bare convolution, then the epilogue in jnp.
    y = _batch_bilinear(fam, fam.conv, x, w, dx, dw, size, params, PLAIN)
    nd = geometry.nd

    def lead(v, d, per_channel):
        if v is None:
            return None
        if d is None:
            return v
        v = jnp.moveaxis(v, d, 0)
        return v.reshape(size, *(1,) * (nd + 1), v.shape[-1]) if per_channel else v

    outs = apply_epilogue(
        y,
        lead(bias, dbias, True),
        lead(scale, dscale, True),
        lead(shift, dshift, True),
        lead(residual, dres, False),
        epilogue,
        x.dtype,
    )
    return outs, [0] * n_out


def _bilinear_batcher(fam, prim):
    def rule(axis_data, vals, dims, **params):
        if all(d is None for d in dims):
            return prim.bind(*vals, **params), None
        a, b_ = vals
        da, db = dims
        return _batch_bilinear(fam, prim, a, b_, da, db, axis_data.size, params), 0

    return rule


# ---------------------------------------------------------------------------------------------
# Lowering.


def _forward_fn(geometry, impl, options, epilogue):
    im = _get_impl(impl)

    def run(x, w, *vecs):
        bias, scale, shift, residual = _split(vecs, epilogue.has)
        if im.fused_forward is not None:
            return list(
                im.fused_forward(x, w, bias, scale, shift, residual, geometry, options, epilogue)
            )
        y = im.forward(x, w, geometry, options)
        if epilogue.plain:
            return [y]
        return apply_epilogue(y, bias, scale, shift, residual, epilogue, x.dtype)

    return run


def _transposed(fn, which: int, geometry, options):
    """The linear transpose of ``fn(x, w)`` with respect to operand ``which``."""

    def run(other, ct):
        n = ct.shape[0]
        if which == 0:
            aval = jax.ShapeDtypeStruct(geometry.x_shape(n), other.dtype)
            (out,) = jax.linear_transpose(lambda x: fn(x, other, geometry, options), aval)(ct)
        else:
            aval = jax.ShapeDtypeStruct(geometry.w_shape(), other.dtype)
            (out,) = jax.linear_transpose(lambda w: fn(other, w, geometry, options), aval)(ct)
        return out

    return run


def _input_grad_fn(geometry, impl, options):
    im = _get_impl(impl)
    if im.input_grad is not None:
        return lambda dy, w: im.input_grad(dy, w, geometry, options)
    tr = _transposed(im.forward, 0, geometry, options)
    return lambda dy, w: tr(w, dy)


def _weight_grad_fn(geometry, impl, options):
    im = _get_impl(impl)
    if im.weight_grad is not None:
        return lambda x, dy: im.weight_grad(x, dy, geometry, options)
    return _transposed(im.forward, 1, geometry, options)


def _specs(nd: int) -> dict[str, str]:
    """Shardy factor names of each tensor role: the batch ``n`` and one factor per other dim."""
    s_in = " ".join(f"i{i}" for i in range(nd))
    s_out = " ".join(f"o{i}" for i in range(nd))
    kern = " ".join(f"k{i}" for i in range(nd))
    return {"x": f"n {s_in} ci", "y": f"n {s_out} co", "w": f"{kern} wi co", "v": "co"}


def _partitioned(fn, operands: list[str], results: list[str]):
    """``fn`` wrapped in ``custom_partitioning``: batch-sharded operands stay sharded.

    ``operands`` and ``results`` are Shardy factor strings (:func:`_specs`). Operands whose
    first factor is the batch ``n`` keep the batch sharding of the first such operand; every
    other dim is replicated. Results are batch-sharded alike, or, for a result without ``n``
    (the weight gradient), replicated after a ``psum`` of the per-shard partial sums.
    """
    from jax.experimental.custom_partitioning import custom_partitioning
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    batch_args = tuple(r.split()[0] == "n" for r in operands)
    reduce_batch = results[0].split()[0] != "n"

    def batch_axes(arg_shapes):
        for shape, is_batch in zip(arg_shapes, batch_args, strict=True):
            spec = getattr(shape.sharding, "spec", None)
            if is_batch and spec is not None and len(spec) and spec[0] is not None:
                return spec[0]
        return None

    def sharding(mesh, ndim, axes):
        return NamedSharding(mesh, P(axes, *(None,) * (ndim - 1)))

    def partition(mesh, arg_shapes, result_shape):
        axes = batch_axes(arg_shapes)
        arg_sh = tuple(
            sharding(mesh, len(s.shape), axes if b else None)
            for s, b in zip(arg_shapes, batch_args, strict=True)
        )
        multi = isinstance(result_shape, list | tuple)
        shapes = result_shape if multi else [result_shape]
        out_axes = None if reduce_batch else axes
        out_sh = [sharding(mesh, len(s.shape), out_axes) for s in shapes]

        def lower(*args):
            out = fn(*args)
            if reduce_batch and axes is not None:
                out = jax.lax.psum(out, axes)
            return out

        return mesh, lower, out_sh if multi else out_sh[0], arg_sh

    wrapped = custom_partitioning(fn)
    factors = list(dict.fromkeys(f for r in operands + results for f in r.split()))
    wrapped.def_partition(
        partition=partition,
        sharding_rule=f"{', '.join(operands)} -> {', '.join(results)}",
        need_replication_factors=tuple(f for f in factors if f != "n"),  # in rule order
        **({"reduction_factors": ("n",)} if reduce_batch else {}),
    )
    return wrapped


def _sharded_over_devices(ctx) -> bool:
    """Whether the module is partitioned by XLA over several devices (a jit with shardings),
    rather than one device or the manual shards of a ``shard_map``."""
    axis_context = ctx.module_context.axis_context
    devices = getattr(axis_context, "device_assignment", None)
    return devices is not None and len(devices) > 1


def _lowering(make_fn, operands, results, multiple_results: bool):
    """A lowering rule: ``mlir.lower_fun`` of the implementation, partitioned when asked for."""

    def rule(ctx, *args, **params):
        fn = make_fn(**params)
        geometry, impl = params["geometry"], params["impl"]
        if _get_impl(impl).partition and _sharded_over_devices(ctx):
            specs = _specs(geometry.nd)
            ops, res = operands(params), results(params)
            fn = _partitioned(fn, [specs[r] for r in ops], [specs[r] for r in res])
        return mlir.lower_fun(fn, multiple_results=multiple_results)(ctx, *args)

    return rule


def _conv_operands(params):
    has = params["epilogue"].has
    return ["x", "w"] + ["v"] * sum(has[:3]) + ["y"] * has[3]


# ---------------------------------------------------------------------------------------------
# Registration. Two families with the same names and rules: the second is lowered with the
# physical devices at hand (jax's registry of primitives that need them), which
# ``custom_partitioning`` needs to partition a kernel over a sharded batch; it is bound for
# implementations marked ``partition=True``, except under an abstract device (ahead-of-time
# lowering for another platform, where there are no devices and nothing to partition).


def _register(fam: _Family, *, requires_devices: bool) -> _Family:
    fam.conv.def_abstract_eval(_conv_abstract)
    fam.transpose.def_abstract_eval(_conv_transpose_abstract)
    fam.wgrad.def_abstract_eval(_weight_grad_abstract)
    for prim in (fam.conv, fam.transpose, fam.wgrad):
        prim.def_impl(_eager(prim))
    ad.primitive_jvps[fam.conv] = functools.partial(_conv_jvp, fam)
    ad.primitive_transposes[fam.conv] = functools.partial(_conv_transpose_rule, fam)

    def plain(a, b, **params):
        return fam.conv.bind(a, b, epilogue=PLAIN, **params)[0]

    # conv_transpose(dy, w): dy's transpose is conv(ct, w); w's is weight_grad(ct, dy).
    ad.defbilinear(
        fam.transpose,
        _cast_result(lambda ct, dy, w, **p: plain(ct, w, **p), 0),
        _cast_result(lambda ct, dy, w, **p: fam.wgrad.bind(ct, dy, **p), 1),
    )
    # weight_grad(x, dy): x's transpose is conv_transpose(dy, ct); dy's is conv(x, ct).
    ad.defbilinear(
        fam.wgrad,
        _cast_result(lambda ct, x, dy, **p: fam.transpose.bind(dy, ct, **p), 0),
        _cast_result(lambda ct, x, dy, **p: plain(x, ct, **p), 1),
    )
    batching.fancy_primitive_batchers[fam.conv] = functools.partial(_conv_batch, fam)
    batching.fancy_primitive_batchers[fam.transpose] = _bilinear_batcher(fam, fam.transpose)
    batching.fancy_primitive_batchers[fam.wgrad] = _bilinear_batcher(fam, fam.wgrad)
    mlir.register_lowering(
        fam.conv,
        _lowering(
            _forward_fn,
            _conv_operands,
            lambda p: ["y"] * (2 if p["epilogue"].emit_pre else 1),
            multiple_results=True,
        ),
    )
    mlir.register_lowering(
        fam.transpose,
        _lowering(_input_grad_fn, lambda p: ["y", "w"], lambda p: ["x"], multiple_results=False),
    )
    mlir.register_lowering(
        fam.wgrad,
        _lowering(_weight_grad_fn, lambda p: ["x", "y"], lambda p: ["w"], multiple_results=False),
    )
    if requires_devices:
        from jax._src import dispatch  # jax 0.11: the registry has no public name

        dispatch.prim_requires_devices_during_lowering.update((fam.conv, fam.transpose, fam.wgrad))
    return fam


_LOCAL = _register(_new_family(), requires_devices=False)
_SHARDABLE = _register(_new_family(), requires_devices=True)
conv_p, conv_transpose_p, weight_grad_p = _LOCAL.conv, _LOCAL.transpose, _LOCAL.wgrad


def _family(impl: str) -> _Family:
    """The family to bind: the shardable one for kernels opaque to XLA's partitioner."""
    if _get_impl(impl).partition and jax.sharding.get_abstract_mesh().abstract_device is None:
        return _SHARDABLE
    return _LOCAL


def is_conv_primitive(prim: Any, kind: str = "conv") -> bool:
    """Whether ``prim`` (a jaxpr equation's primitive) is ``dlref_conv`` (``kind="conv"``),
    ``dlref_conv_transpose`` (``"transpose"``) or ``dlref_conv_weight_grad`` (``"wgrad"``)."""
    return any(prim is getattr(fam, kind) for fam in (_LOCAL, _SHARDABLE))
