"""`dlref verify` rows for the convolution kernels (im2col and Pallas in interpret mode).

The arguments are float32 (the kernels accumulate in float32), hence ``rtol=1e-5``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from dlref.kernels import im2col_conv, pallas_conv
from dlref.verify import Case

_OPTS = dict(stride=2, padding=1, groups=2)


def _args(key):
    kx, kw = jax.random.split(key)
    return (
        jax.random.normal(kx, (2, 7, 6, 4), jnp.float32),
        jax.random.normal(kw, (3, 3, 2, 6), jnp.float32),
    )


def _lax(x, w):
    return lax.conv_general_dilated(
        x,
        w,
        (2, 2),
        ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=2,
        precision=lax.Precision.HIGHEST,
    )


def _im2col(x, w):
    return im2col_conv(x, w, **_OPTS)


def _pallas(x, w):
    return pallas_conv(x, w, **_OPTS, interpret=True)


CASES = [
    Case("kernels.im2col_conv", "lax.conv_general_dilated", _im2col, _lax, _args, (0, 1), 1e-5),
    Case("kernels.pallas_conv", "lax.conv_general_dilated", _pallas, _lax, _args, (0, 1), 1e-5),
]
