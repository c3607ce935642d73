"""`dlref verify`: every public op against its lax / jax.nn / optax / flax counterpart.

Each topic module in this package (``dlref/verify/<topic>.py``) defines ``CASES``, a list of
:class:`Case`; :data:`TOPICS` names those modules. Adding an op to ``dlref verify`` is adding a
``Case`` to its topic's list (and, for a new topic, its name to :data:`TOPICS`).

A case compares, on random inputs in float64 (unless the case makes other dtypes):

* the values ``fn(*args)`` and ``ref(*args)``;
* the vector-Jacobian products of both with the *same* random cotangent, with respect to
  ``args[i]`` for ``i`` in ``argnums``.

Errors are normwise relative errors, ``max|a - b| / max|b|`` over every leaf, so a row reads
"how many digits agree"; a row passes when both are at most the case's ``rtol``.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

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
      rtol: the largest normwise relative error (value and gradient) that passes.
    """

    op: str
    counterpart: str
    fn: Callable[..., Any]
    ref: Callable[..., Any]
    make_args: Callable[[jax.Array], tuple]
    argnums: tuple[int, ...] = (0,)
    rtol: float = 1e-10


@dataclasses.dataclass(frozen=True)
class Row:
    """The outcome of one :class:`Case`."""

    op: str
    counterpart: str
    value_error: float
    grad_error: float | None
    rtol: float
    error: str | None = None

    @property
    def passed(self) -> bool:
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


def relative_error(a: Any, b: Any) -> float:
    """Normwise relative error ``max|a - b| / max|b|`` over all leaves of two pytrees."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(la) != len(lb):
        raise ValueError(f"verify: outputs have {len(la)} and {len(lb)} leaves")
    num, den = 0.0, 0.0
    for x, y in zip(la, lb, strict=True):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"verify: shapes differ, {x.shape} vs {y.shape}")
        if x.size == 0:
            continue
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            return float("inf")
        num = max(num, float(np.max(np.abs(x - y))))
        den = max(den, float(np.max(np.abs(y))))
    if num == 0.0:
        return 0.0
    return num / den if den > 0 else float("inf")


def _random_like(key: jax.Array, tree: Any) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = []
    for k, leaf in zip(keys, leaves, strict=False):
        leaf = jnp.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            out.append(jax.random.normal(k, leaf.shape, leaf.dtype))
        else:  # integer outputs carry a float0 cotangent
            out.append(np.zeros(leaf.shape, jax.dtypes.float0))
    return jax.tree.unflatten(treedef, out)


def _vjp(fn: Callable, args: tuple, argnums: tuple[int, ...], cotangent: Any) -> tuple:
    def wrt(*diff):
        full = list(args)
        for i, d in zip(argnums, diff, strict=True):
            full[i] = d
        return fn(*full)

    _, pullback = jax.vjp(wrt, *(args[i] for i in argnums))
    return pullback(cotangent)


def run_case(case: Case, key: jax.Array) -> Row:
    """Run one case with float64 enabled; exceptions become a failing row."""
    try:
        with jax.enable_x64(True):
            k_args, k_ct = jax.random.split(key)
            args = case.make_args(k_args)
            got = case.fn(*args)
            want = case.ref(*args)
            value_error = relative_error(got, want)
            grad_error = None
            if case.argnums:
                ct = _random_like(k_ct, want)
                g_got = _vjp(case.fn, args, case.argnums, ct)
                g_want = _vjp(case.ref, args, case.argnums, ct)
                grad_error = relative_error(g_got, g_want)
        return Row(case.op, case.counterpart, value_error, grad_error, case.rtol)
    except Exception as e:  # noqa: BLE001 - a crash is reported as a failing row
        return Row(case.op, case.counterpart, float("nan"), None, case.rtol, repr(e))


def run(
    cases: Sequence[Case] | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
) -> list[Row]:
    """Run ``cases`` (default: every registered case) and return their rows."""
    from tqdm.auto import tqdm

    cases = all_cases() if cases is None else list(cases)
    key = jax.random.key(seed)
    rows = []
    bar = tqdm(cases, desc="dlref verify", unit="op", disable=not progress, file=sys.stderr)
    for i, case in enumerate(bar):
        bar.set_postfix_str(case.op)
        rows.append(run_case(case, jax.random.fold_in(key, i)))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """Render rows as a fixed-width text table."""
    header = ("op", "counterpart", "value rel err", "grad rel err", "tol", "result")
    body = []
    for r in rows:
        grad = "-" if r.grad_error is None else f"{r.grad_error:.2e}"
        result = "pass" if r.passed else ("ERROR" if r.error else "FAIL")
        body.append((r.op, r.counterpart, f"{r.value_error:.2e}", grad, f"{r.rtol:.0e}", result))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), "  ".join("-" * w for w in widths)]
    out += [line.format(*b) for b in body]
    errors = [r for r in rows if r.error]
    for r in errors:
        out.append(f"  {r.op}: {r.error}")
    n_pass = sum(r.passed for r in rows)
    out.append(f"{n_pass}/{len(rows)} ops pass")
    return "\n".join(out)
