"""`dlref verify` rows for dlref.augment: each transform against its dm-pix namesake.

Only transforms whose dm-pix counterpart computes the same map are listed (dm-pix's
``adjust_saturation`` is multiplicative in HSV like dlref's, so it is included). Geometry rows
use a fixed (2, 3) matrix whose output coordinates all lie at least 0.088 px from an integer
(so from the borders of the 7 × 9 image and from the bilinear kinks): there dlref's "constant"
mode (1e-3 px edge tolerance) and dm-pix's exact one agree, and the gradient in the matrix is
defined. Random inputs are strictly inside [0, 1] and have no ties between channels.
"""

from __future__ import annotations

import dm_pix as pix
import jax
import jax.numpy as jnp

from dlref import augment as A
from dlref.verify import Case

_M = ((0.988, 0.345, -1.185), (-0.102, 0.997, 0.73))
_M_PIX = ((0.988, 0.345, 0.0, -1.185), (-0.102, 0.997, 0.0, 0.73), (0.0, 0.0, 1.0, 0.0))

# Why four rows are verified in float64 and float32 only (`dlref verify --dtype` shows n/a):
# the transforms compute in the image's dtype, as dm-pix does, and 16-bit arithmetic moves
# points across the pieces of a piecewise map.
_HSV_16 = (
    "16-bit hue arithmetic: 6h is off by up to 2^-5 (bfloat16) near 6, so a pixel near a "
    "hue-sector boundary takes the next piece"
)
_COORD_16 = (
    "sampling coordinates are computed in the image dtype: a bfloat16 coordinate near 8 px is "
    "off by up to 0.03 px"
)


def _img(key):
    return (jax.random.uniform(key, (7, 9, 3), "float64", 0.02, 0.98),)


def _batch(key):
    return (jax.random.uniform(key, (3, 7, 9, 3), "float64", 0.02, 0.98),)


def _img_factor(factor):
    return lambda key: (*_img(key), jnp.asarray(factor, "float64"))


def _img_matrix(key):
    return (*_img(key), jnp.asarray(_M, "float64"))


def _pix_affine(x, m):
    full = jnp.asarray(_M_PIX, x.dtype)
    full = full.at[:2, :2].set(m[:, :2]).at[:2, 3].set(m[:, 2])
    return pix.affine_transform(x, full, mode="constant", cval=0.0)


def _namesake(name, make_args, argnums=(0,), **settings):
    """The row of ``augment.<name>`` against ``dm_pix.<name>``."""
    ours, theirs = getattr(A, name), getattr(pix, name)
    return Case(f"augment.{name}", f"dm_pix.{name}", ours, theirs, make_args, argnums, **settings)


def _wide_only(why, measured):
    """The settings of a row verified in float64 and float32 only, with its 16-bit errors."""
    return dict(dtypes=("float64", "float32"), note=f"{why} (measured {measured})")


CASES: list[Case] = [
    _namesake("flip_left_right", _batch),
    _namesake("flip_up_down", _batch),
    _namesake("rgb_to_hsv", _batch, rtol=1e-12),
    _namesake(
        "hsv_to_rgb",
        _batch,
        rtol=1e-12,
        **_wide_only(_HSV_16, "grad error 0.10 in bfloat16, 0.016 in float16"),
    ),
    _namesake(
        "adjust_saturation",
        _img_factor(0.6),
        (0, 1),
        rtol=1e-12,
        **_wide_only(_HSV_16, "grad error 0.34 in bfloat16, 0.008 in float16"),
    ),
    _namesake("adjust_contrast", _img_factor(1.4), (0, 1), rtol=1e-12),
    _namesake("adjust_brightness", _img_factor(-0.1), (0, 1)),
    Case(
        "augment.affine",
        "dm_pix.affine_transform",
        A.affine,
        _pix_affine,
        _img_matrix,
        argnums=(0, 1),
        rtol=1e-12,
        **_wide_only(
            _COORD_16, "value/grad error 0.018/0.035 in bfloat16, 0.0026/0.0092 in float16"
        ),
    ),
    Case(
        "augment.rotate",
        "dm_pix.rotate",
        lambda x, t: A.rotate(x, t, mode="nearest"),
        lambda x, t: pix.rotate(x, t, mode="nearest"),
        _img_factor(0.4),
        argnums=(0, 1),
        rtol=1e-12,
        **_wide_only(
            _COORD_16, "value/grad error 0.032/0.79 in bfloat16, 0.0025/0.0041 in float16"
        ),
    ),
]
