"""`dlref verify` rows for the convolution kernels (im2col and Pallas in interpret mode).

The arguments are float32 (the kernels accumulate in float32), hence ``rtol=1e-5``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from dlref.kernels import im2col_conv, pallas_conv
from dlref.verify import Case
from dlref.verify.convolution import lax_conv

_OPTS = dict(stride=2, padding=1, groups=2)


def float32_conv_args(key):
    """``(x, w)`` for a 2-group convolution, in float32 (the kernels accumulate in float32)."""
    kx, kw = jax.random.split(key)
    return (
        jax.random.normal(kx, (2, 7, 6, 4), jnp.float32),
        jax.random.normal(kw, (3, 3, 2, 6), jnp.float32),
    )


_lax = functools.partial(lax_conv, stride=(2, 2), padding=((1, 1), (1, 1)), groups=2)


def _im2col(x, w):
    return im2col_conv(x, w, **_OPTS)


def _pallas(x, w):
    return pallas_conv(x, w, **_OPTS, interpret=True)


CASES = [
    Case(f"kernels.{name}", "lax.conv_general_dilated", fn, _lax, float32_conv_args, (0, 1), 1e-5)
    for name, fn in (("im2col_conv", _im2col), ("pallas_conv", _pallas))
]
