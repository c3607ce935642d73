"""`dlref verify --transforms`: op × transformation, each against its counterpart.

Every cell runs the dlref op and its lax / jax.nn / optax / flax counterpart (the same
:class:`~dlref.verify.Case` rows as ``dlref verify``) under the *same* transformation and
compares the two with :func:`dlref.testing.op_errors` (normwise relative errors per output
leaf, the largest shown):

* ``jit`` — ``jax.jit(fn)`` against ``jax.jit(ref)``, values;
* ``vmap`` — ``jax.vmap`` over a batch of two independent draws of every argument, values;
* ``jvp`` — one random tangent through both (``jax.jvp``);
* ``vjp`` — one random cotangent through both (``jax.vjp``);
* ``order 2`` — the JVP with a fixed random tangent, ``x -> ∂f(x)·t``, as a function: its
  value and its VJP (reverse-over-forward, a Hessian-vector product for scalar losses).

Rows: activations, losses, norm, regularize, pooling, and the convolution for each ``impl``
(reference, xla, im2col, pallas, auto). A transformation that raises (an op without a JVP
rule, say) is a ``fail`` cell naming the exception's type; it does not stop the table. Ops
without a gradient (``argnums=()``) show ``n/a`` in the derivative columns.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from dlref.convolution import IMPLS, conv
from dlref.testing import op_errors
from dlref.verify import Case, all_cases, prepare, run_each
from dlref.verify.convolution import lax_conv
from dlref.verify.kernels import float32_conv_args

__all__ = ["TRANSFORMS", "TOPICS", "Cell", "TransformRow", "transform_cases", "run", "format_table"]

TRANSFORMS = ("jit", "vmap", "jvp", "vjp", "order 2")
TOPICS = ("activations", "losses", "norm", "regularize", "pooling")


_lax = functools.partial(lax_conv, stride=(2, 1), padding=((1, 1), (0, 1)), groups=2)


def conv_cases() -> list[Case]:
    """``conv`` with stride (2, 1), (lo, hi) padding and 2 groups, once per ``impl``."""
    return [
        Case(
            f"convolution.conv(impl={impl!r})",
            "lax.conv_general_dilated",
            functools.partial(conv, stride=(2, 1), padding=((1, 1), (0, 1)), groups=2, impl=impl),
            _lax,
            float32_conv_args,
            argnums=(0, 1),
        )
        for impl in IMPLS
    ]


def transform_cases() -> list[Case]:
    """The rows of the table: :data:`TOPICS`' cases, then :func:`conv_cases`."""
    return all_cases(TOPICS) + conv_cases()


@dataclasses.dataclass(frozen=True)
class Cell:
    """One op under one transformation: its error, or why there is none."""

    error: float | None = None  # the largest normwise relative error
    exception: str | None = None  # "NotImplementedError: ..." when the transformation raised
    applicable: bool = True

    def passed(self, rtol: float) -> bool:
        if not self.applicable:
            return True
        return self.exception is None and self.error is not None and self.error <= rtol

    def text(self, rtol: float) -> str:
        if not self.applicable:
            return "n/a"
        if self.exception is not None:
            return f"fail ({self.exception.split(':')[0]})"
        mark = "" if self.passed(rtol) else "FAIL "
        return f"{mark}{self.error:.1e}"


@dataclasses.dataclass(frozen=True)
class TransformRow:
    """One op across :data:`TRANSFORMS`."""

    op: str
    counterpart: str
    rtol: float
    cells: dict[str, Cell]
    dtype: str = "float64"

    @property
    def passed(self) -> bool:
        return all(c.passed(self.rtol) for c in self.cells.values())


def _tangent_fn(f: Callable, argnums: tuple[int, ...], tangents: tuple) -> Callable:
    """``args -> ∂f(args)·t`` along ``args[argnums]`` (tangents cast to each primal's dtype)."""

    def g(*args):
        def h(*diff):
            full = list(args)
            for i, d in zip(argnums, diff, strict=True):
                full[i] = d
            return f(*full)

        primals = tuple(args[i] for i in argnums)
        ts = tuple(
            jax.tree.map(
                lambda t, p: t if t.dtype == jax.dtypes.float0 else t.astype(p.dtype), t, p
            )
            for t, p in zip(tangents, primals, strict=True)
        )
        return jax.jvp(h, primals, ts)[1]

    return g


def _random_tangents(key: jax.Array, args: tuple, argnums: tuple[int, ...]) -> tuple:
    out = []
    for i, k in zip(argnums, jax.random.split(key, len(argnums)), strict=True):
        leaves, treedef = jax.tree.flatten(args[i])
        keys = jax.random.split(k, max(1, len(leaves)))
        ts = [
            jax.random.normal(kk, v.shape, jnp.float32).astype(v.dtype)
            if jnp.issubdtype(v.dtype, jnp.floating)
            else jnp.zeros(v.shape, jax.dtypes.float0)
            for kk, v in zip(keys, leaves, strict=False)
        ]
        out.append(jax.tree.unflatten(treedef, ts))
    return tuple(out)


def _cell(thunk: Callable[[], dict[str, dict[str, float]]]) -> Cell:
    try:
        errs = thunk()
    except Exception as e:  # noqa: BLE001 - a transformation that raises is a failing cell
        return Cell(exception=f"{type(e).__name__}: {e}")
    return Cell(error=max((v for m in errs.values() for v in m.values()), default=0.0))


def run_case(case: Case, key: jax.Array, dtype: str = "float64") -> TransformRow:
    """Every transformation of one case (float64 enabled); exceptions become failing cells."""
    cells: dict[str, Cell] = {}
    with jax.enable_x64(True):
        k_args, k_args2, k_dir, k_t = jax.random.split(key, 4)
        try:
            args, ref_dtype, rtol = prepare(case, k_args, dtype)
            args2, _, _ = prepare(case, k_args2, dtype)
        except Exception as e:  # noqa: BLE001
            bad = Cell(exception=f"{type(e).__name__}: {e}")
            return TransformRow(
                case.op, case.counterpart, float("nan"), dict.fromkeys(TRANSFORMS, bad), dtype
            )
        common = dict(key=k_dir, argnums=case.argnums, reference_dtype=ref_dtype)
        fn, ref = case.fn, case.ref
        cells["jit"] = _cell(
            lambda: op_errors(jax.jit(fn), jax.jit(ref), *args, modes=("value",), **common)
        )
        batched = jax.tree.map(lambda a, b: jnp.stack([a, b]), args, args2)
        cells["vmap"] = _cell(
            lambda: op_errors(jax.vmap(fn), jax.vmap(ref), *batched, modes=("value",), **common)
        )
        if not case.argnums:
            for t in ("jvp", "vjp", "order 2"):
                cells[t] = Cell(applicable=False)
        else:
            cells["jvp"] = _cell(lambda: op_errors(fn, ref, *args, modes=("jvp",), **common))
            cells["vjp"] = _cell(lambda: op_errors(fn, ref, *args, modes=("vjp",), **common))

            def order2():
                ts = _random_tangents(k_t, args, case.argnums)
                f2 = _tangent_fn(fn, case.argnums, ts)
                r2 = _tangent_fn(ref, case.argnums, ts)
                return op_errors(f2, r2, *args, modes=("value", "vjp"), **common)

            cells["order 2"] = _cell(order2)
    return TransformRow(case.op, case.counterpart, rtol, cells, dtype)


def run(
    cases: Sequence[Case] | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    dtype: str = "float64",
) -> list[TransformRow]:
    """Run ``cases`` (default :func:`transform_cases`) under every transformation."""
    cases = transform_cases() if cases is None else list(cases)
    return run_each(run_case, cases, seed, progress, dtype, "dlref verify --transforms")


def format_table(rows: Sequence[TransformRow]) -> str:
    """Render the op × transformation table; failing cells' exceptions are listed below."""
    header = ("op", *TRANSFORMS, "tol")
    body = [(r.op, *(r.cells[t].text(r.rtol) for t in TRANSFORMS), f"{r.rtol:.0e}") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    dtypes = sorted({r.dtype for r in rows})
    out = [f"op x transformation, dtype {', '.join(dtypes)}; cells: largest normwise rel err"]
    out += [line.format(*header), "  ".join("-" * w for w in widths)]
    out += [line.format(*b) for b in body]
    for r in rows:
        for t in TRANSFORMS:
            exc = r.cells[t].exception
            if exc is not None:
                first = exc.splitlines()[0]
                out.append(f"  {r.op} [{t}]: {first[:160]}")
    n_cells = sum(len(r.cells) for r in rows)
    n_pass = sum(c.passed(r.rtol) for r in rows for c in r.cells.values())
    out.append(f"{n_pass}/{n_cells} cells pass; {sum(r.passed for r in rows)}/{len(rows)} ops")
    return "\n".join(out)
