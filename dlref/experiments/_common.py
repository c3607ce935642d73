"""Helpers shared by the experiments: the digits data, small functional MLPs, step counting."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dlref.train import Splits
from dlref.train import load_digits as _load_digits


@functools.lru_cache(maxsize=4)
def digits(seed: int, layout: str = "flat") -> Splits:
    """The splits of :func:`dlref.train.load_digits`, cached (every experiment reuses them)."""
    return _load_digits(seed=seed, layout=layout)


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
