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


CASES: list[Case] = [
    Case(
        "augment.flip_left_right",
        "dm_pix.flip_left_right",
        A.flip_left_right,
        pix.flip_left_right,
        _batch,
    ),
    Case("augment.flip_up_down", "dm_pix.flip_up_down", A.flip_up_down, pix.flip_up_down, _batch),
    Case(
        "augment.rgb_to_hsv", "dm_pix.rgb_to_hsv", A.rgb_to_hsv, pix.rgb_to_hsv, _batch, rtol=1e-12
    ),
    Case(
        "augment.hsv_to_rgb",
        "dm_pix.hsv_to_rgb",
        A.hsv_to_rgb,
        pix.hsv_to_rgb,
        _batch,
        rtol=1e-12,
        dtypes=("float64", "float32"),
        note=_HSV_16 + " (measured grad error 0.10 in bfloat16, 0.016 in float16)",
    ),
    Case(
        "augment.adjust_saturation",
        "dm_pix.adjust_saturation",
        A.adjust_saturation,
        pix.adjust_saturation,
        _img_factor(0.6),
        argnums=(0, 1),
        rtol=1e-12,
        dtypes=("float64", "float32"),
        note=_HSV_16 + " (measured grad error 0.34 in bfloat16, 0.008 in float16)",
    ),
    Case(
        "augment.adjust_contrast",
        "dm_pix.adjust_contrast",
        A.adjust_contrast,
        pix.adjust_contrast,
        _img_factor(1.4),
        argnums=(0, 1),
        rtol=1e-12,
    ),
    Case(
        "augment.adjust_brightness",
        "dm_pix.adjust_brightness",
        A.adjust_brightness,
        pix.adjust_brightness,
        _img_factor(-0.1),
        argnums=(0, 1),
    ),
    Case(
        "augment.affine",
        "dm_pix.affine_transform",
        A.affine,
        _pix_affine,
        _img_matrix,
        argnums=(0, 1),
        rtol=1e-12,
        dtypes=("float64", "float32"),
        note=_COORD_16
        + " (measured value/grad error 0.018/0.035 in bfloat16, 0.0026/0.0092 in float16)",
    ),
    Case(
        "augment.rotate",
        "dm_pix.rotate",
        lambda x, t: A.rotate(x, t, mode="nearest"),
        lambda x, t: pix.rotate(x, t, mode="nearest"),
        _img_factor(0.4),
        argnums=(0, 1),
        rtol=1e-12,
        dtypes=("float64", "float32"),
        note=_COORD_16
        + " (measured value/grad error 0.032/0.79 in bfloat16, 0.0025/0.0041 in float16)",
    ),
]
