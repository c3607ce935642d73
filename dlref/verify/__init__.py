"""`dlref verify`: every public op against its lax / jax.nn / optax / flax counterpart.

Each topic module in this package (``dlref/verify/<topic>.py``) defines ``CASES``, a list of
:class:`Case`; :data:`TOPICS` names those modules. Adding an op to ``dlref verify`` is adding a
``Case`` to its topic's list (and, for a new topic, its name to :data:`TOPICS`).

A case compares, on random inputs made in float64 (unless the case makes other dtypes):

* the values ``fn(*args)`` and ``ref(*args)``;
* the vector-Jacobian products of both with the *same* random cotangent, with respect to
  ``args[i]`` for ``i`` in ``argnums``.

With ``dtype`` (``dlref verify --dtype bfloat16``) the floating inputs are rounded to that
dtype, ``fn`` runs on them and ``ref`` runs on the same rounded values in float64: the error
is the op's own, in the dtype it runs in (on an accelerator, where it runs), against
:func:`dlref.testing.tolerance` of that dtype.

Errors are :func:`dlref.testing.op_errors`: normwise relative errors ``max|a - b| / max|b|``
per output leaf (the largest over the leaves is shown), so a row reads "how many digits
agree"; a row passes when both are at most its tolerance. :mod:`dlref.verify.transforms` is
the second table, op × transformation (``dlref verify --transforms``).
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from dlref.testing import TOLERANCES, op_errors, tolerance

TOPICS: tuple[str, ...] = (
    "activations",
    "losses",
    "norm",
    "regularize",
    "convolution",
    "pooling",
    "kernels",
    "nn",
    "augment",
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of ``dlref verify``.

    Attributes:
      op: the dlref name, e.g. ``"activations.relu"``.
      counterpart: what it is checked against, e.g. ``"jax.nn.relu"``.
      fn: the dlref side, called as ``fn(*args)``.
      ref: the counterpart, called with the same arguments.
      make_args: ``key -> args``; runs with float64 enabled.
      argnums: positions of ``args`` to differentiate; empty for ops without a gradient.
      rtol: the largest normwise relative error (value and gradient) that passes in the
        default run; ``None``: :func:`dlref.testing.tolerance` of the least precise floating
        input. Runs in another dtype always use that dtype's tolerance.
      dtypes: the dtypes the op is verified in; a run in another dtype shows the row as
        ``n/a`` (neither passed nor failed) with ``note``, the measured reason.
      note: why the row leaves out some dtypes (shown in the table).
    """

    op: str
    counterpart: str
    fn: Callable[..., Any]
    ref: Callable[..., Any]
    make_args: Callable[[jax.Array], tuple]
    argnums: tuple[int, ...] = (0,)
    rtol: float | None = None
    dtypes: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")
    note: str = ""


DTYPES = ("float64", "float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class Row:
    """The outcome of one :class:`Case` in one dtype."""

    op: str
    counterpart: str
    value_error: float
    grad_error: float | None
    rtol: float
    error: str | None = None
    dtype: str = "float64"
    not_run: str | None = None  # why the case is not verified in this dtype

    @property
    def passed(self) -> bool:
        if self.not_run is not None:
            return True  # not a failure, and not counted as a pass by format_table
        if self.error is not None:
            return False
        grad_ok = self.grad_error is None or self.grad_error <= self.rtol
        return self.value_error <= self.rtol and grad_ok


def all_cases(topics: Sequence[str] = TOPICS) -> list[Case]:
    """Import each topic module of this package and concatenate its ``CASES``."""
    cases: list[Case] = []
    for topic in topics:
        module = importlib.import_module(f"dlref.verify.{topic}")
        cases.extend(module.CASES)
    return cases


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"verify: dtype must be one of {DTYPES}, got {dtype!r}")
    return dtype


def _is_float_array(v: Any) -> bool:
    return isinstance(v, jax.Array) and jnp.issubdtype(v.dtype, jnp.floating)


def cast_args(args: tuple, dtype: str) -> tuple:
    """``args`` with every floating array leaf rounded to ``dtype`` (integers untouched)."""
    return jax.tree.map(lambda v: v.astype(dtype) if _is_float_array(v) else v, args)


def args_tolerance(args: tuple) -> float:
    """:func:`dlref.testing.tolerance` of the least precise floating array in ``args``."""
    names = {jnp.dtype(v.dtype).name for v in jax.tree.leaves(args) if _is_float_array(v)}
    return max((TOLERANCES[n] for n in names if n in TOLERANCES), default=TOLERANCES["float64"])


def prepare(case: Case, key: jax.Array, dtype: str) -> tuple[tuple, Any, float]:
    """``(args for fn, reference dtype, tolerance)`` of ``case`` in ``dtype`` (x64 enabled)."""
    args = case.make_args(key)
    if dtype == "float64":
        rtol = case.rtol if case.rtol is not None else args_tolerance(args)
        return args, None, rtol
    return cast_args(args, dtype), jnp.float64, tolerance(dtype)


def _worst(errors: dict[str, float]) -> float:
    return max(errors.values(), default=0.0)


def run_case(case: Case, key: jax.Array, dtype: str = "float64") -> Row:
    """Run one case, jitted, with float64 enabled; exceptions become a failing row."""
    _check_dtype(dtype)
    rtol = float("nan")
    if dtype not in case.dtypes:
        why = f"{'/'.join(case.dtypes)} only" + (f": {case.note}" if case.note else "")
        return Row(case.op, case.counterpart, float("nan"), None, rtol, dtype=dtype, not_run=why)
    try:
        with jax.enable_x64(True):
            k_args, k_ct = jax.random.split(key)
            args, ref_dtype, rtol = prepare(case, k_args, dtype)
            modes = ("value", "vjp") if case.argnums else ("value",)
            # jitted, as the ops run in practice (and ~10% less CPU than op by op here)
            errs = op_errors(
                case.fn,
                case.ref,
                *args,
                modes=modes,
                key=k_ct,
                argnums=case.argnums,
                reference_dtype=ref_dtype,
                jit=True,
            )
            grad = _worst(errs["vjp"]) if "vjp" in errs else None
        return Row(case.op, case.counterpart, _worst(errs["value"]), grad, rtol, dtype=dtype)
    except Exception as e:  # noqa: BLE001 - a crash is reported as a failing row
        return Row(case.op, case.counterpart, float("nan"), None, rtol, repr(e), dtype)


def run(
    cases: Sequence[Case] | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    dtype: str = "float64",
) -> list[Row]:
    """Run ``cases`` (default: every registered case) in ``dtype`` and return their rows."""
    _check_dtype(dtype)
    cases = all_cases() if cases is None else list(cases)
    return run_each(run_case, cases, seed, progress, dtype, "dlref verify")


def run_each(
    run_one: Callable[[Case, jax.Array, str], Any],
    cases: Sequence[Case],
    seed: int,
    progress: bool,
    dtype: str,
    desc: str,
) -> list:
    """``run_one(case, key, dtype)`` for each case, the i-th with ``fold_in(key(seed), i)``.

    A ``desc`` progress bar on stderr shows the case running (unless ``progress`` is false).
    """
    from tqdm.auto import tqdm

    key = jax.random.key(seed)
    rows = []
    bar = tqdm(cases, desc=desc, unit="op", disable=not progress, file=sys.stderr)
    for i, case in enumerate(bar):
        bar.set_postfix_str(case.op)
        rows.append(run_one(case, jax.random.fold_in(key, i), dtype))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """Render rows as a fixed-width text table."""
    header = ("op", "counterpart", "value rel err", "grad rel err", "tol", "result")
    body = []
    for r in rows:
        if r.not_run is not None:
            body.append((r.op, r.counterpart, "-", "-", "-", "n/a"))
            continue
        grad = "-" if r.grad_error is None else f"{r.grad_error:.2e}"
        result = "pass" if r.passed else ("ERROR" if r.error else "FAIL")
        body.append((r.op, r.counterpart, f"{r.value_error:.2e}", grad, f"{r.rtol:.0e}", result))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    dtypes = sorted({r.dtype for r in rows})
    out = []
    if dtypes and dtypes != ["float64"]:
        out.append(f"dtype {', '.join(dtypes)} against the float64 reference")
    out += [line.format(*header), "  ".join("-" * w for w in widths)]
    out += [line.format(*b) for b in body]
    for r in rows:
        if r.error:
            out.append(f"  {r.op}: {r.error}")
    run_rows = [r for r in rows if r.not_run is None]
    for r in rows:
        if r.not_run is not None:
            out.append(f"  n/a {r.op}: {r.not_run}")
    n_pass = sum(r.passed for r in run_rows)
    skipped = len(rows) - len(run_rows)
    out.append(f"{n_pass}/{len(run_rows)} ops pass" + (f" ({skipped} n/a)" if skipped else ""))
    return "\n".join(out)
