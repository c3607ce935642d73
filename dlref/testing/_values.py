"""Inputs without ties in any floating dtype (for max-type ops and their gradients)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["distinct_values"]


def _common_16bit_grid(n: int) -> np.ndarray:
    """``n`` sorted values of ``[-2, 2]`` exact in bfloat16 *and* float16 (hence in float32 and
    float64): 0 and every bfloat16 number with ``2^-e <= |x| <= 2``, ``e`` from 8 up to 14
    (float16's smallest normal) until there are enough, thinned evenly."""
    every = np.arange(2**16, dtype=np.uint16).view(jnp.bfloat16)
    with np.errstate(invalid="ignore"):  # NaN bit patterns
        every = every.astype(np.float64)
    every = np.unique(every[np.isfinite(every) & (np.abs(every) <= 2.0)])
    for e in range(8, 15):
        pick = every[(np.abs(every) >= 2.0**-e) | (every == 0)]
        if pick.size >= n:
            return pick[(np.arange(n) * pick.size) // n]
    raise ValueError(
        f"distinct_values: {n} values do not fit; at most {pick.size} are distinct in both "
        f"bfloat16 and float16 within [-2, 2]"
    )


def distinct_values(key: Any, shape: tuple[int, ...], dtype: Any = jnp.float64) -> jax.Array:
    """Pairwise distinct values in ``[-2, 2]`` that stay distinct when rounded to bfloat16 or
    float16, randomly placed: no ties under any max, in any dtype.

    Args:
      key: a ``jax.random`` key (or an int seed).
      shape: the array's shape (at most ~3800 entries).
      dtype: the dtype of the result.

    Returns:
      An array of ``shape`` and ``dtype``.

    Raises:
      ValueError: more entries than there are such values.
    """
    if isinstance(key, int):
        key = jax.random.key(key)
    n = math.prod(shape)
    grid = _common_16bit_grid(n)
    perm = np.asarray(jax.random.permutation(key, n))
    return jnp.asarray(grid[perm].reshape(shape), dtype)
