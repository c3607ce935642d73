"""Helpers shared by the experiments: the digits data, small functional MLPs, step counting,
and the argument checks (on top of :mod:`dlref._checks`) that many of them share."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlref._checks import check_choice, check_in_range, check_int, check_real
from dlref.train import History, Splits, fit
from dlref.train import load_digits as _load_digits


def check_positive(value: Any, name: str, op: str) -> None:
    """Raise unless ``value`` is a finite real scalar ``> 0`` (a step size, a scale).

    Raises:
      TypeError: ``value`` is not a real number.
      ValueError: ``value`` is NaN, infinite, or ``<= 0``.
    """
    check_real(value, name, op, finite=True)
    check_in_range(value, 0.0, math.inf, name, op, lo_closed=False)


def check_counts(op: str, **counts: Any) -> None:
    """Raise unless each ``name=value`` in ``counts`` is an int ``>= 1`` (sizes, steps, repeats).

    Raises:
      TypeError: a value that is not an int.
      ValueError: a value below 1.
    """
    for name, value in counts.items():
        check_int(value, name, op, minimum=1)


def check_sequence(
    values: Any, name: str, op: str, check_entry: Callable[[Any, str], Any], *, min_length: int = 1
) -> tuple:
    """Return ``values`` as a tuple after checking that it is a sequence (a tuple, a list, a
    1-D NumPy array; not a string) of at least ``min_length`` entries, each passing
    ``check_entry(entry, f"an entry of {name}")``.

    Raises:
      TypeError: ``values`` is not a sequence (or what ``check_entry`` raises).
      ValueError: fewer than ``min_length`` entries (or what ``check_entry`` raises).
    """
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        raise TypeError(f"{op}: {name} must be a sequence (a tuple or a list), got {values!r}")
    items = tuple(values)
    if len(items) < min_length:
        raise ValueError(f"{op}: {name} must have at least {min_length} entries, got {values!r}")
    for v in items:
        check_entry(v, f"an entry of {name}")
    return items


def check_ints(
    values: Any, name: str, op: str, *, minimum: int = 1, min_length: int = 1
) -> tuple[int, ...]:
    """A sequence of ints ``>= minimum`` (batch sizes, channel counts): :func:`check_sequence`."""
    return check_sequence(
        values,
        name,
        op,
        lambda v, what: check_int(v, what, op, minimum=minimum),
        min_length=min_length,
    )


def check_choices(values: Any, choices: Sequence[str], name: str, op: str, *, entry: str) -> tuple:
    """A non-empty sequence of names, each one of ``choices`` (the message calls one ``entry``)."""
    return check_sequence(values, name, op, lambda v, _: check_choice(v, tuple(choices), entry, op))


def check_fits_train(batch: int | Sequence[int], n: int, name: str, op: str, *, minimum: int = 1):
    """Raise unless ``batch`` (a batch size, or each of a sequence of them, already checked
    ``>= minimum``) is at most the ``n`` training examples.

    Raises:
      ValueError: a batch size above ``n``.
    """
    many = np.ndim(batch) > 0
    if (max(batch) if many else batch) > n:
        shown = repr(batch) if many else str(batch)
        raise ValueError(
            f"{op}: {name} must lie in [{minimum}, {n}] (the training set size), got {shown}"
        )


@functools.lru_cache(maxsize=4)
def digits(seed: int, layout: str = "flat") -> Splits:
    """The splits of :func:`dlref.train.load_digits`, cached (every experiment reuses them)."""
    return _load_digits(seed=seed, layout=layout)


def fit_quietly(
    model: Any,
    optimizer: Any,
    data: Splits,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    validate: bool = True,
) -> History:
    """:func:`dlref.train.fit` on ``data.train`` as the experiments run it: no progress bar.

    With ``validate``, ``data.val`` is scored every epoch and the model keeps its last epoch's
    weights (not the best epoch's: the experiments compare where training ends).
    """
    val = dict(val=data.val, restore_best=False) if validate else {}
    return fit(
        model,
        optimizer,
        data.train,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        progress=False,
        **val,
    )


def standardized_digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat digits standardised with the training statistics (constant pixels left at 0)."""
    d = digits(seed)
    x, y = d.train
    mu, sd = x.mean(0), x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    xv, yv = d.val
    return (x - mu) / sd, y, (xv - mu) / sd, yv


_INITS = {
    # variance of each weight, as a function of (fan_in, fan_out)
    "lecun": lambda a, b: 1.0 / a,
    "he": lambda a, b: 2.0 / a,
    "xavier": lambda a, b: 2.0 / (a + b),
    "normal": lambda a, b: 1.0,
}


def init_mlp(
    key: jax.Array, sizes: Sequence[int], init: str = "lecun", *, dtype=jnp.float32
) -> list[tuple[jax.Array, jax.Array]]:
    """``[(W, b)]`` of an MLP with layer sizes ``sizes``: normal weights of variance
    ``_INITS[init](fan_in, fan_out)``, zero biases."""
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True):
        std = math.sqrt(_INITS[init](a, b))
        params.append((std * jax.random.normal(k, (a, b), dtype), jnp.zeros((b,), dtype)))
    return params


def mlp_apply(
    params: Sequence[tuple[jax.Array, jax.Array]],
    x: jax.Array,
    act: Callable[[jax.Array], jax.Array],
    *,
    out_act: Callable[[jax.Array], jax.Array] | None = None,
) -> jax.Array:
    """``act`` after every hidden layer, ``out_act`` (default none) after the last."""
    for w, b in params[:-1]:
        x = act(x @ w + b)
    w, b = params[-1]
    y = x @ w + b
    return y if out_act is None else out_act(y)


def first_below(curve: np.ndarray, target: float) -> int | None:
    """1-based index of the first entry ``<= target`` (the steps needed), ``None`` if never."""
    hit = np.flatnonzero(np.asarray(curve) <= target)
    return int(hit[0]) + 1 if hit.size else None


def stable_norm(tree) -> float:
    """Global L2 norm of a pytree computed in float64 NumPy (no overflow of the squares)."""
    leaves = [np.asarray(leaf, np.float64).ravel() for leaf in jax.tree.leaves(tree)]
    v = np.concatenate(leaves)
    scale = np.max(np.abs(v)) if v.size else 0.0
    if not np.isfinite(scale):
        return math.inf
    if scale == 0:
        return 0.0
    return float(scale * np.linalg.norm(v / scale))


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])
