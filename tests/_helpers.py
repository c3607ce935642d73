"""Helpers shared by several test files (one copy each)."""

from __future__ import annotations

import jax
import numpy as np


def xla_cost(f, *args) -> float:
    """XLA's ``cost_analysis()`` of the compiled ``f``: ``flops + transcendentals``."""
    c = jax.jit(f).lower(*args).compile().cost_analysis()
    return c.get("flops", 0.0) + c.get("transcendentals", 0.0)


def padding_taps(n, k, s, lo, hi, d) -> tuple[int, int]:
    """NumPy oracle: (output position, tap) pairs that fall on padding along one dim, and the
    output size."""
    out = (n + lo + hi - d * (k - 1) - 1) // s + 1
    pos = np.arange(out)[:, None] * s - lo + np.arange(k)[None, :] * d
    return int(np.sum((pos < 0) | (pos >= n))), out
