"""dlref.augment against dm-pix, colorsys, scipy.ndimage and NumPy oracles, plus properties.

Oracles that are not dm-pix / SciPy / colorsys are written here in NumPy (torchvision's
grey-blend saturation, albumentations' additive saturation, per-channel clamping brightness).
"""

from __future__ import annotations

import colorsys
import doctest
import math

import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

import dlref.augment as A
from dlref import _color_conversion, _geometry, _photometric
from dlref.augment import (
    MODES,
    Transform,
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    adjust_value,
    affine,
    augment_batch,
    expand_dataset,
    fit_pca_color,
    flip_left_right,
    flip_up_down,
    gaussian_noise,
    hsv_to_rgb,
    pca_color,
    random_brightness,
    random_contrast,
    random_crop,
    random_flip_left_right,
    random_flip_up_down,
    random_gaussian_noise,
    random_resized_crop,
    random_rotate,
    random_salt_and_pepper,
    random_saturation,
    random_scale,
    random_translate,
    random_value,
    rgb_to_hsv,
    rotate,
    salt_and_pepper,
    scale,
    translate,
)

RNG = np.random.default_rng(20240601)
IMG = RNG.random((7, 9, 3))  # float64 master copy; tests cast as they need
BATCH = RNG.random((4, 6, 5, 3))
# A generic output->input matrix (found by a seeded search): every output coordinate lies at
# least 0.088 px from an integer, so from the borders (SciPy's exact "constant" test and dlref's
# 1e-3 px edge tolerance agree) and from the bilinear kinks (check_grads in the matrix).
MATRIX = np.array([[0.988, 0.345, -1.185], [-0.102, 0.997, 0.73]])


def _scipy_affine(x, m, mode, cval=0.0):
    return np.stack(
        [
            ndi.affine_transform(x[..., c], m[:, :2], offset=m[:, 2], order=1, mode=mode, cval=cval)
            for c in range(x.shape[-1])
        ],
        axis=-1,
    )


def _pix3(m):
    """dm-pix's (3, 4) homogeneous matrix over (row, col, channel) for a (2, 3) one."""
    return np.array([[m[0, 0], m[0, 1], 0, m[0, 2]], [m[1, 0], m[1, 1], 0, m[1, 2]], [0, 0, 1, 0]])


def _colorsys_image(fn, x):
    flat = np.asarray(x, np.float64).reshape(-1, 3)
    return np.array([fn(*p) for p in flat]).reshape(np.shape(x))


# ------------------------------------------------------------------------------------------
# Flips
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7, 9, 3), (4, 6, 5, 3)])
def test_flips_match_dm_pix(shape):
    x = jnp.asarray(RNG.random(shape), jnp.float32)
    np.testing.assert_array_equal(flip_left_right(x), pix.flip_left_right(x))
    np.testing.assert_array_equal(flip_up_down(x), pix.flip_up_down(x))


@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))
def test_flips_are_involutions(h, w, c):
    x = jnp.asarray(np.random.default_rng(h * 16 + w * 4 + c).random((h, w, c)), jnp.float32)
    np.testing.assert_array_equal(flip_left_right(flip_left_right(x)), x)
    np.testing.assert_array_equal(flip_up_down(flip_up_down(x)), x)


def test_random_flip_probability_extremes_and_batch(key):
    x = jnp.asarray(BATCH, jnp.float32)
    np.testing.assert_array_equal(random_flip_left_right(key, x, p=1.0), x[:, :, ::-1])
    np.testing.assert_array_equal(random_flip_up_down(key, x, p=0.0), x)
    np.testing.assert_array_equal(random_flip_up_down(key, x, p=1), x[:, ::-1])  # an int p
    # 64 identical images with p = 0.5: each flips independently (P[all equal] = 2^-63)
    same = jnp.broadcast_to(x[0], (64, *x.shape[1:]))
    flipped = jnp.any(random_flip_left_right(key, same) != same, axis=(1, 2, 3))
    assert 0 < int(flipped.sum()) < 64


# ------------------------------------------------------------------------------------------
# Affine, rotate, scale, translate
# ------------------------------------------------------------------------------------------


def test_matrix_stays_away_from_borders():
    r, c = np.meshgrid(np.arange(7), np.arange(9), indexing="ij")
    rows = MATRIX[0, 0] * r + MATRIX[0, 1] * c + MATRIX[0, 2]
    cols = MATRIX[1, 0] * r + MATRIX[1, 1] * c + MATRIX[1, 2]
    for v in (rows, cols):
        assert np.min(np.abs(v - np.round(v))) > 0.08


@pytest.mark.parametrize("mode", MODES)
def test_affine_matches_scipy(x64, mode):
    got = affine(jnp.asarray(IMG), jnp.asarray(MATRIX), mode=mode, cval=0.3)
    np.testing.assert_allclose(got, _scipy_affine(IMG, MATRIX, mode, 0.3), rtol=0, atol=1e-13)


@pytest.mark.parametrize("mode", ["constant", "nearest"])
def test_affine_matches_dm_pix_value_and_vjp(x64, mode):
    x, m = jnp.asarray(IMG), jnp.asarray(MATRIX)
    ours = lambda im: affine(im, m, mode=mode, cval=0.3)  # noqa: E731
    theirs = lambda im: pix.affine_transform(im, jnp.asarray(_pix3(MATRIX)), mode=mode, cval=0.3)  # noqa: E731
    y, vjp = jax.vjp(ours, x)
    y_ref, vjp_ref = jax.vjp(theirs, x)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-13)
    ct = jnp.asarray(RNG.standard_normal(y.shape))
    np.testing.assert_allclose(vjp(ct)[0], vjp_ref(ct)[0], rtol=0, atol=1e-13)


def test_affine_identity_and_integer_shift(x64):
    x = jnp.asarray(IMG)
    np.testing.assert_array_equal(affine(x, jnp.array([[1.0, 0, 0], [0, 1.0, 0]])), x)
    # [[1, 0, -2], [0, 1, 0]] moves the content 2 rows down (documented convention)
    y = affine(x, jnp.array([[1.0, 0, -2], [0, 1.0, 0]]))
    np.testing.assert_array_equal(y[2:], x[:-2])
    np.testing.assert_array_equal(y[:2], 0.0)


@pytest.mark.parametrize("angle", [0.4, -1.1, math.pi / 2])
@pytest.mark.parametrize("mode", ["constant", "nearest"])
def test_rotate_matches_dm_pix_and_scipy(x64, angle, mode):
    x = jnp.asarray(IMG)
    got = rotate(x, angle, mode=mode)
    np.testing.assert_allclose(got, pix.rotate(x, angle, mode=mode), rtol=0, atol=1e-13)
    # the same rotation written out as a SciPy output->input matrix about the centre
    c, s = math.cos(angle), math.sin(angle)
    lin = np.array([[c, s], [-s, c]])
    centre = (np.array(IMG.shape[:2]) - 1) / 2
    m = np.concatenate([lin, (centre - lin @ centre)[:, None]], axis=1)
    np.testing.assert_allclose(got, _scipy_affine(IMG, m, mode), rtol=0, atol=1e-12)


def test_rotate_90_is_rot90_and_360_is_identity_float32():
    x = jnp.asarray(RNG.random((8, 8, 3)), jnp.float32)
    # counter-clockwise as displayed: np.rot90 (k=1) on (row, col)
    np.testing.assert_allclose(rotate(x, math.pi / 2), np.rot90(x, 1, (0, 1)), atol=1e-5)
    # "up to interpolation": coordinates are off by ~1e-6 px in float32, so 1e-5 in value
    for mode in ("constant", "reflect"):
        np.testing.assert_allclose(rotate(x, 2 * math.pi, mode=mode), x, atol=1e-5)
    # SciPy / dm-pix's exact "constant" test drops border pixels here; dlref's 1e-3 px does not
    dropped = pix.rotate(x, 2 * math.pi, mode="constant")
    assert float(jnp.max(jnp.abs(dropped - x))) > 0.1


def test_reflect_fill_has_no_zeros_and_constant_fills_cval():
    x = jnp.full((9, 9, 1), 0.5, jnp.float32)
    assert float(jnp.min(rotate(x, 0.7, mode="reflect"))) == pytest.approx(0.5)
    corners = rotate(x, 0.7, mode="constant", cval=0.25)
    assert float(corners[0, 0, 0]) == 0.25


def test_scale_and_translate_match_scipy(x64):
    x = jnp.asarray(IMG)
    s = (1.3, 0.8)
    centre = (np.array(IMG.shape[:2]) - 1) / 2
    lin = np.diag(1 / np.array(s))
    m = np.concatenate([lin, (centre - lin @ centre)[:, None]], axis=1)
    np.testing.assert_allclose(scale(x, s), _scipy_affine(IMG, m, "constant"), atol=1e-13)
    d = (1.25, -0.5)
    m = np.array([[1, 0, -d[0]], [0, 1, -d[1]]])
    np.testing.assert_allclose(
        translate(x, d, mode="reflect"), _scipy_affine(IMG, m, "reflect"), atol=1e-13
    )
    # hand-worked: [1, 2, 3] shifted right by one pixel, constant fill 0
    np.testing.assert_array_equal(
        translate(jnp.array([1.0, 2.0, 3.0]).reshape(1, 3, 1), (0, 1)).ravel(), [0.0, 1.0, 2.0]
    )


def test_geometry_on_a_batch_is_per_image_with_the_same_parameters(x64):
    xb = jnp.asarray(BATCH)
    m = jnp.asarray(MATRIX)
    for fn in (
        lambda v: affine(v, m, mode="reflect"),
        lambda v: rotate(v, 0.3),
        lambda v: scale(v, 1.2),
        lambda v: translate(v, (0.5, -1.0)),
    ):
        np.testing.assert_allclose(fn(xb), jnp.stack([fn(v) for v in xb]), rtol=0, atol=1e-15)


def test_affine_gradients(x64):
    x = jnp.asarray(IMG)
    m = jnp.asarray(MATRIX)
    # linear in the image: second-order check in both modes
    check_grads(lambda v: affine(v, m, mode="grid-constant"), (x,), order=2, modes=["fwd", "rev"])
    # smooth in the matrix inside a cell (MATRIX keeps every coordinate off integers)
    check_grads(lambda a: affine(x, a, mode="reflect"), (m,), order=2, modes=["fwd", "rev"])
    # smooth in the angle (0.3 rad keeps this image's coordinates off integers), and the
    # angle's VJP equals dm-pix's with the same cotangent
    check_grads(lambda t: rotate(x, t, mode="reflect"), (0.3,), order=1, modes=["fwd", "rev"])

    @jax.jit
    def angle_vjps(t, ct):
        ours = jax.vjp(lambda t: rotate(x, t, mode="constant"), t)[1](ct)[0]
        return ours, jax.vjp(lambda t: pix.rotate(x, t, mode="constant"), t)[1](ct)[0]

    ct = jnp.asarray(RNG.standard_normal(x.shape))
    np.testing.assert_allclose(*angle_vjps(0.4, ct), rtol=1e-12)


def test_jit_and_vmap_agree_with_eager():
    x = jnp.asarray(BATCH, jnp.float32)
    f = lambda v, t: rotate(v, t, mode="reflect")  # noqa: E731
    eager = f(x, 0.5)
    np.testing.assert_allclose(jax.jit(f)(x, 0.5), eager, atol=1e-6)
    angles = jnp.array([0.1, 0.2, 0.3, 0.4], jnp.float32)
    vm = jax.vmap(f)(x, angles)
    np.testing.assert_allclose(vm[2], f(x[2], 0.3), atol=1e-6)
    c = jax.vmap(adjust_contrast)(x, angles)
    np.testing.assert_allclose(c[1], adjust_contrast(x[1], 0.2), atol=1e-6)


# ------------------------------------------------------------------------------------------
# Crops
# ------------------------------------------------------------------------------------------


def test_random_crop_is_a_window_and_independent_per_image(key):
    x = jnp.asarray(np.arange(6 * 5, dtype=np.float32).reshape(6, 5, 1))
    y = random_crop(key, x, (3, 2))
    t, left = int(y[0, 0, 0]) // 5, int(y[0, 0, 0]) % 5
    np.testing.assert_array_equal(y, x[t : t + 3, left : left + 2])
    xb = jnp.broadcast_to(x, (32, 6, 5, 1))
    yb = random_crop(key, xb, (3, 2))
    keys = jax.random.split(key, 32)
    np.testing.assert_array_equal(yb[5], random_crop(keys[5], x, (3, 2)))
    assert len({float(v) for v in yb[:, 0, 0, 0]}) > 1
    np.testing.assert_array_equal(random_crop(key, x, (6, 5)), x)


def test_random_resized_crop_full_box_is_identity_and_shapes(key):
    x = jnp.asarray(RNG.random((6, 6, 3)), jnp.float32)
    y = random_resized_crop(key, x, (6, 6), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(y, x, atol=1e-6)
    # half-size output of the whole image samples between pixel centres (2i + 0.5)
    y = random_resized_crop(key, x, (3, 3), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    want = 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])
    np.testing.assert_allclose(y, want, atol=1e-6)
    yb = random_resized_crop(key, jnp.stack([x] * 3), 4)
    assert yb.shape == (3, 4, 4, 3)
    assert float(yb.min()) >= float(x.min()) and float(yb.max()) <= float(x.max())


# ------------------------------------------------------------------------------------------
# HSV
# ------------------------------------------------------------------------------------------


def test_hsv_matches_colorsys_and_dm_pix(x64):
    x = np.concatenate([IMG.reshape(-1, 3), [[0.5, 0.5, 0.5], [0, 0, 0], [1, 0, 0], [1, 1, 0]]])
    x = x.reshape(1, -1, 3)
    hsv = rgb_to_hsv(jnp.asarray(x))
    np.testing.assert_allclose(hsv, _colorsys_image(colorsys.rgb_to_hsv, x), atol=1e-14)
    np.testing.assert_allclose(hsv, pix.rgb_to_hsv(jnp.asarray(x)), atol=1e-14)
    h = RNG.random((1, 50, 3))
    np.testing.assert_allclose(
        hsv_to_rgb(jnp.asarray(h)), _colorsys_image(colorsys.hsv_to_rgb, h), atol=1e-14
    )
    np.testing.assert_allclose(
        hsv_to_rgb(jnp.asarray(h)), pix.hsv_to_rgb(jnp.asarray(h)), atol=1e-14
    )


@given(st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_hsv_round_trip(rgb):
    with jax.enable_x64(True):
        x = jnp.asarray(rgb, jnp.float64).reshape(1, 1, 3)
        np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-14)


def test_hsv_gradients_finite_on_grey_black_and_white():
    x = jnp.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [1.0, 0.0, 0.0]]])
    for fn in (rgb_to_hsv, lambda v: adjust_saturation(v, 1.5), lambda v: adjust_value(v, 0.7)):
        g = jax.grad(lambda v, fn=fn: jnp.sum(fn(v) ** 2))(x)
        assert bool(jnp.all(jnp.isfinite(g)))
    # grey pixel: the hue gradient is set to zero (safe division)
    g = jax.grad(lambda v: rgb_to_hsv(v)[0, 2, 0])(x)
    np.testing.assert_array_equal(g, 0.0)


def _torchvision_saturation(x, f):
    """torchvision/augmax: blend with the ITU-R 601 luma grey image, clamp to [0, 1]."""
    grey = 0.299 * x[..., :1] + 0.587 * x[..., 1:2] + 0.114 * x[..., 2:]
    return np.clip(f * x + (1 - f) * grey, 0, 1)


def _albumentations_saturation(x, shift):
    """albumentations' HueSaturationValue: S + shift (additive), clipped."""
    hsv = _colorsys_image(colorsys.rgb_to_hsv, x)
    hsv[..., 1] = np.clip(hsv[..., 1] + shift, 0, 1)
    return _colorsys_image(colorsys.hsv_to_rgb, hsv)


@pytest.mark.parametrize("factor", [0.0, 0.4, 1.7])
def test_adjust_saturation_multiplicative_in_hsv(x64, factor):
    x = jnp.asarray(IMG)
    got = np.asarray(adjust_saturation(x, factor))
    hsv = _colorsys_image(colorsys.rgb_to_hsv, IMG)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 1)
    np.testing.assert_allclose(got, _colorsys_image(colorsys.hsv_to_rgb, hsv), atol=1e-14)
    # hue and value are kept (where the pixel is not grey after the change)
    out_hsv = _colorsys_image(colorsys.rgb_to_hsv, got)
    np.testing.assert_allclose(out_hsv[..., 2], hsv[..., 2], atol=1e-14)
    # dm-pix / tf.image are multiplicative in HSV too: same values
    np.testing.assert_allclose(got, pix.adjust_saturation(x, factor), atol=1e-14)
    # torchvision's grey blend and albumentations' additive shift are different maps (at
    # factor 0 the additive shift of -1 also gives grey)
    assert np.max(np.abs(got - _torchvision_saturation(IMG, factor))) > 0.02
    if factor != 0.0:
        assert np.max(np.abs(got - _albumentations_saturation(IMG, factor - 1))) > 0.02


def test_adjust_value_keeps_hue_where_per_channel_clamp_does_not(x64):
    x = np.array([[[0.8, 0.4, 0.1], [0.3, 0.6, 0.2], [0.0, 0.0, 0.0]]])
    got = np.asarray(adjust_value(jnp.asarray(x), 1.6))
    hsv = _colorsys_image(colorsys.rgb_to_hsv, x)
    hsv[..., 2] = np.clip(hsv[..., 2] * 1.6, 0, 1)
    np.testing.assert_allclose(got, _colorsys_image(colorsys.hsv_to_rgb, hsv), atol=1e-14)
    # torchvision's adjust_brightness clamps each channel: pixel 0 (V*1.6 = 1.28) changes hue
    clamped = np.clip(1.6 * x, 0, 1)
    h_ours = colorsys.rgb_to_hsv(*got[0, 0])[0]
    h_clamp = colorsys.rgb_to_hsv(*clamped[0, 0])[0]
    assert abs(h_ours - colorsys.rgb_to_hsv(*x[0, 0])[0]) < 1e-12
    assert abs(h_clamp - h_ours) > 0.01


def test_contrast_and_brightness_match_dm_pix(x64):
    xb = jnp.asarray(BATCH)
    np.testing.assert_allclose(adjust_contrast(xb, 1.7), pix.adjust_contrast(xb, 1.7), atol=1e-14)
    np.testing.assert_allclose(
        adjust_brightness(xb, -0.2), pix.adjust_brightness(xb, -0.2), atol=1e-15
    )
    # hand-worked: mean 0.5, deviations ±0.25 doubled
    np.testing.assert_allclose(adjust_contrast(jnp.array([[[0.25], [0.75]]]), 2.0).ravel(), [0, 1])
    check_grads(lambda v: adjust_contrast(v, 1.3), (xb,), order=2, modes=["fwd", "rev"])
    check_grads(lambda f: adjust_contrast(xb, f), (1.3,), order=2, modes=["fwd", "rev"])


def test_float64_is_kept(x64, key):
    # the output dtype is all this checks, so trace (jax.eval_shape) instead of compiling
    x = jnp.asarray(IMG)
    calls = [
        lambda: flip_left_right(x),
        lambda: rotate(x, 0.2),
        lambda: affine(x, jnp.asarray(MATRIX, jnp.float32)),
        lambda: scale(x, 1.1),
        lambda: translate(x, 1.0),
        lambda: rgb_to_hsv(x),
        lambda: hsv_to_rgb(x),
        lambda: adjust_saturation(x, 0.5),
        lambda: adjust_value(x, 0.5),
        lambda: adjust_contrast(x, 0.5),
        lambda: adjust_brightness(x, 0.1),
        lambda: gaussian_noise(key, x, 0.1),
        lambda: salt_and_pepper(key, x, 0.1),
        lambda: pca_color(key, x, *fit_pca_color(x)),
        lambda: random_resized_crop(key, x, 4),
        lambda: augment_batch(key, x[None], (Transform("rotate", 0.5, (0.3,)),)),
    ]
    assert [jax.eval_shape(call).dtype for call in calls] == [jnp.float64] * len(calls)


# ------------------------------------------------------------------------------------------
# Noise
# ------------------------------------------------------------------------------------------


def test_gaussian_noise_statistics():
    # fixed key; n = 3·10^4 draws: the sample mean has s.e. σ/√n = 5.8e-4 and the sample std a
    # relative s.e. 1/√(2n) = 0.41%; the bounds below are 5 standard errors.
    x = jnp.full((100, 100, 3), 0.5, jnp.float32)
    sigma = 0.1
    d = np.asarray(gaussian_noise(jax.random.key(7), x, sigma) - x, np.float64).ravel()
    n = d.size
    assert abs(d.mean()) < 5 * sigma / math.sqrt(n)
    assert abs(d.std() / sigma - 1) < 5 / math.sqrt(2 * n)
    np.testing.assert_array_equal(gaussian_noise(jax.random.key(7), x, 0.0), x)


def test_random_gaussian_noise_sigma_within_range(key):
    x = jnp.zeros((16, 32, 32, 3), jnp.float32)
    y = np.asarray(random_gaussian_noise(key, x, 0.2))
    stds = y.reshape(16, -1).std(axis=1)
    assert np.all(stds < 0.2 * (1 + 5 / math.sqrt(2 * 3072)))  # 5 s.e. above the largest σ
    assert np.ptp(stds) > 0.01  # per-image σ differ


@pytest.mark.parametrize("amount,q", [(0.2, 0.5), (0.5, 0.9)])
def test_salt_and_pepper_fractions(amount, q):
    x = jnp.full((200, 150, 3), 0.5, jnp.float32)
    y = np.asarray(salt_and_pepper(jax.random.key(3), x, amount, salt_vs_pepper=q))
    # whole pixels: all channels corrupted together
    assert np.all(y.min(axis=-1) == y.max(axis=-1))
    n = 200 * 150
    corrupted = (y[..., 0] != 0.5).mean()
    salt = (y[..., 0] == 1.0).sum() / max((y[..., 0] != 0.5).sum(), 1)
    # binomial standard errors, bound 5 s.e.
    assert abs(corrupted - amount) < 5 * math.sqrt(amount * (1 - amount) / n)
    assert abs(salt - q) < 5 * math.sqrt(q * (1 - q) / (amount * n))


def test_salt_and_pepper_extremes_and_gradient(key):
    x = jnp.asarray(IMG, jnp.float32)
    np.testing.assert_array_equal(salt_and_pepper(key, x, 0.0), x)
    np.testing.assert_array_equal(salt_and_pepper(key, x, 1.0, salt_vs_pepper=0.0), 0.0)
    np.testing.assert_array_equal(salt_and_pepper(key, x, 1.0, salt_vs_pepper=1.0), 1.0)
    y = salt_and_pepper(key, x, 0.5)
    g = jax.grad(lambda v: jnp.sum(salt_and_pepper(key, v, 0.5)))(x)
    np.testing.assert_array_equal(g, (y == x).astype(np.float32))  # 1 kept, 0 replaced


# ------------------------------------------------------------------------------------------
# PCA colour
# ------------------------------------------------------------------------------------------


def test_fit_pca_color_eigenvalues_sum_to_rgb_variance(x64):
    data = RNG.random((10, 8, 8, 3)) * np.array([1.0, 0.6, 0.3])
    data[..., 1] += 0.3 * data[..., 0]
    vals, vecs = fit_pca_color(jnp.asarray(data))
    pixels = data.reshape(-1, 3)
    np.testing.assert_allclose(np.sum(vals), pixels.var(axis=0).sum(), rtol=1e-12)
    cov = np.cov(pixels, rowvar=False, bias=True)
    np.testing.assert_allclose(vecs @ np.diag(vals) @ vecs.T, cov, atol=1e-14)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(3), atol=1e-14)
    assert np.all(np.diff(vals) <= 0)
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(cov)[::-1], atol=1e-14)


def test_pca_color_adds_one_shift_per_image_with_documented_alpha(x64):
    data = jnp.asarray(RNG.random((5, 4, 4, 3)))
    vals, vecs = fit_pca_color(data)
    key = jax.random.key(11)
    y = pca_color(key, data, vals, vecs)
    keys = jax.random.split(key, 5)
    for i in range(5):
        alpha = 0.1 * jax.random.normal(keys[i], (3,), jnp.float64)
        np.testing.assert_allclose(
            y[i] - data[i], np.broadcast_to(vecs @ (alpha * vals), (4, 4, 3)), atol=1e-14
        )


def test_pca_color_alpha_statistics():
    # α = (Vᵀ δ)/λ recovered from 4000 images; std of 4000 normals has relative s.e. 1.1%;
    # bound 5 s.e.
    vals = jnp.array([0.2, 0.05, 0.01])
    vecs = jnp.asarray(np.linalg.qr(RNG.standard_normal((3, 3)))[0], jnp.float32)
    x = jnp.full((4000, 1, 1, 3), 0.5)
    d = np.asarray(pca_color(jax.random.key(5), x, vals, vecs, sigma=0.1) - x)[:, 0, 0]
    alpha = (d @ np.asarray(vecs)) / np.asarray(vals)
    np.testing.assert_array_less(np.abs(alpha.std(axis=0) / 0.1 - 1), 5 / math.sqrt(2 * 4000))
    np.testing.assert_array_less(np.abs(alpha.mean(axis=0)), 5 * 0.1 / math.sqrt(4000))


# ------------------------------------------------------------------------------------------
# Random variants: documented draws and per-image independence
# ------------------------------------------------------------------------------------------

RANDOM_CALLS = {
    "flip_lr": lambda k, x: random_flip_left_right(k, x),
    "flip_ud": lambda k, x: random_flip_up_down(k, x),
    "rotate": lambda k, x: random_rotate(k, x, 0.5),
    "scale": lambda k, x: random_scale(k, x, 0.8, 1.2),
    "translate": lambda k, x: random_translate(k, x, (0.1, 0.2)),
    "crop": lambda k, x: random_crop(k, x, (4, 3)),
    "resized_crop": lambda k, x: random_resized_crop(k, x, (4, 4)),
    "saturation": lambda k, x: random_saturation(k, x, 0.5, 1.5),
    "value": lambda k, x: random_value(k, x, 0.5, 1.5),
    "contrast": lambda k, x: random_contrast(k, x, 0.5, 1.5),
    "brightness": lambda k, x: random_brightness(k, x, 0.2),
    "gaussian_noise": lambda k, x: random_gaussian_noise(k, x, 0.1),
    "salt_and_pepper": lambda k, x: random_salt_and_pepper(k, x, 0.3),
    "pca_color": lambda k, x: pca_color(k, x, jnp.array([0.1, 0.02, 0.01]), jnp.eye(3)),
}


@pytest.mark.parametrize("name", list(RANDOM_CALLS))
def test_batch_uses_split_keys(name, key):
    fn = RANDOM_CALLS[name]
    xb = jnp.asarray(BATCH, jnp.float32)
    yb = fn(key, xb)
    keys = jax.random.split(key, xb.shape[0])
    for i in (0, 3):
        np.testing.assert_allclose(yb[i], fn(keys[i], xb[i]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(jax.jit(fn)(key, xb), yb, rtol=0, atol=1e-6)


def test_random_draws_are_the_documented_ones(key):
    x = jnp.asarray(IMG, jnp.float32)
    angle = jax.random.uniform(key, (), jnp.float32, -0.5, 0.5)
    np.testing.assert_allclose(random_rotate(key, x, 0.5), rotate(x, angle), atol=1e-6)
    f = jax.random.uniform(key, (), jnp.float32, 0.5, 1.5)
    np.testing.assert_allclose(random_saturation(key, x, 0.5, 1.5), adjust_saturation(x, f))
    np.testing.assert_allclose(random_contrast(key, x, 0.5, 1.5), adjust_contrast(x, f))
    np.testing.assert_allclose(random_value(key, x, 0.5, 1.5), adjust_value(x, f))
    d = (
        jax.random.uniform(key, (2,), jnp.float32, -1, 1)
        * jnp.array([0.1, 0.2])
        * jnp.array([7, 9])
    )
    np.testing.assert_allclose(random_translate(key, x, (0.1, 0.2)), translate(x, d), atol=1e-6)


# ------------------------------------------------------------------------------------------
# Policies: augment_batch (online) and expand_dataset (offline)
# ------------------------------------------------------------------------------------------

POLICY = (
    Transform("flip_left_right", p=0.5),
    Transform("rotate", p=0.7, args=(0.4,)),
    Transform("saturation", p=0.5, args=(0.6, 1.4)),
    Transform("contrast", p=1.0, args=(0.8, 1.2)),
    Transform("brightness", p=0.5, args=(0.1,)),
    Transform("gaussian_noise", p=0.5, args=(0.05,)),
)
# A policy that compiles in a fraction of POLICY's time, for the properties that do not depend
# on what the transforms are (keys, clipping, chunking, the compile cache, offline copies):
# random per image (flip, brightness) and pushing values out of [0, 1] (|delta| up to 0.5).
CHEAP = (Transform("flip_left_right", p=0.5), Transform("brightness", p=1.0, args=(0.5,)))


def test_augment_batch_is_per_image_with_split_keys(key):
    xb = jnp.asarray(np.broadcast_to(IMG, (6, *IMG.shape)), jnp.float32)
    yb = augment_batch(key, xb, POLICY)
    assert yb.shape == xb.shape and float(yb.min()) >= 0 and float(yb.max()) <= 1
    keys = jax.random.split(key, 6)
    np.testing.assert_allclose(yb[4], augment_batch(keys[4], xb[4], POLICY), atol=1e-6)
    # identical inputs, independent draws: all six outputs differ
    flat = np.asarray(yb).reshape(6, -1)
    assert all(np.max(np.abs(flat[i] - flat[j])) > 1e-3 for i in range(6) for j in range(i))
    # same key, same images
    np.testing.assert_array_equal(augment_batch(key, xb, POLICY), yb)


def test_augment_batch_clip_and_chunks(key):
    xb = jnp.asarray(np.broadcast_to(IMG, (6, *IMG.shape)), jnp.float32)
    yb = augment_batch(key, xb, CHEAP)
    # clip=False leaves the brightness overshoot, and clipping is the only difference
    raw = augment_batch(key, xb, CHEAP, clip=False)
    assert float(raw.max()) > 1 or float(raw.min()) < 0
    np.testing.assert_allclose(np.clip(raw, 0, 1), yb, atol=1e-6)
    # lax.map in chunks (the CPU-friendly path): same keys, same images
    np.testing.assert_allclose(augment_batch(key, xb, CHEAP, batch_size=4), yb, atol=1e-6)


def test_augment_batch_compiles_once_per_policy(key):
    xb = jnp.asarray(BATCH, jnp.float32)
    augment_batch(key, xb, CHEAP)
    before = A._augment_jit._cache_size()
    same = tuple(Transform(t.name, t.p, t.args) for t in CHEAP)  # equal, not identical
    augment_batch(jax.random.fold_in(key, 1), xb, same)
    assert A._augment_jit._cache_size() == before


def test_augment_batch_probabilities_and_shape_changes(key):
    xb = jnp.asarray(BATCH, jnp.float32)
    np.testing.assert_array_equal(augment_batch(key, xb, (Transform("rotate", 0.0, (1.0,)),)), xb)
    np.testing.assert_array_equal(
        augment_batch(key, xb, Transform("flip_up_down", 1.0)), xb[:, ::-1]
    )
    out = augment_batch(key, xb, (Transform("crop", 1.0, ((3, 3),)), Transform("flip_up_down")))
    assert out.shape == (4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"changes the image shape .* p must be 1"):
        augment_batch(key, xb, (Transform("crop", 0.5, ((3, 3),)),))


def test_policy_with_arrays_and_callables_is_hashable(key):
    xb = jnp.asarray(BATCH, jnp.float32)
    vals, vecs = fit_pca_color(xb)
    t = Transform("pca_color", 1.0, (vals, vecs), {"sigma": 0.2})
    assert hash(t) == hash(Transform("pca_color", 1.0, (vals, vecs), (("sigma", 0.2),)))
    y = augment_batch(key, xb, (t,), clip=False)
    keys = jax.random.split(key, 4)
    k_fn = jax.random.split(jax.random.split(keys[1], 1)[0])[1]  # documented key path
    np.testing.assert_allclose(y[1], pca_color(k_fn, xb[1], vals, vecs, sigma=0.2), atol=1e-6)
    custom = Transform(lambda k, im, a: im * a, 1.0, (0.5,))
    np.testing.assert_allclose(augment_batch(key, xb, (custom,)), xb * 0.5)


def test_expand_dataset_copies_are_augment_batch_with_fold_in(key):
    xb = jnp.asarray(BATCH, jnp.float32)
    labels = {"y": jnp.arange(4), "w": jnp.ones((4, 2))}
    out, lab = expand_dataset(key, xb, labels, 3, CHEAP)
    assert out.shape == (12, *xb.shape[1:])
    np.testing.assert_array_equal(lab["y"], np.tile(np.arange(4), 3))
    for j in range(3):
        want = augment_batch(jax.random.fold_in(key, j), xb, CHEAP)
        np.testing.assert_array_equal(out[4 * j : 4 * (j + 1)], want)
    # and image n of copy j is the single-image call with split(fold_in(key, j), N)[n]
    k = jax.random.split(jax.random.fold_in(key, 2), 4)[3]
    np.testing.assert_allclose(out[11], augment_batch(k, xb[3], CHEAP), atol=1e-6)
    kept, _ = expand_dataset(key, xb, labels, 2, CHEAP, keep_original=True)
    np.testing.assert_array_equal(kept[:4], xb)
    np.testing.assert_array_equal(kept[4:], out[4:8])


def test_gradients_through_a_differentiable_policy_are_finite(key):
    policy = (Transform("rotate", 1.0, (0.3,)), Transform("contrast", 1.0, (0.8, 1.2)))
    xb = jnp.asarray(BATCH, jnp.float32)
    g = jax.grad(lambda v: jnp.sum(augment_batch(key, v, policy, clip=False) ** 2))(xb)
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0
    big = jnp.asarray(BATCH * 1e4, jnp.float32)  # extreme finite values
    for fn in (rgb_to_hsv, lambda v: adjust_saturation(v, 2.0), lambda v: rotate(v, 0.2)):
        g = jax.grad(lambda v, fn=fn: jnp.sum(fn(v)))(big)
        assert bool(jnp.all(jnp.isfinite(g)))


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_bad_input(key):
    x = jnp.asarray(IMG, jnp.float32)
    with pytest.raises(ValueError, match=r"rotate: image must have rank 3 or 4, got rank 2"):
        rotate(x[..., 0], 0.1)
    with pytest.raises(ValueError, match=r"rank 3 or 4, got rank 5"):
        flip_left_right(x[None, None])
    with pytest.raises(TypeError, match=r"flip_up_down: image must have a floating dtype"):
        flip_up_down(jnp.zeros((2, 2, 3), jnp.uint8))
    with pytest.raises(ValueError, match=r"rgb_to_hsv: image must have 3 channels"):
        rgb_to_hsv(jnp.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match=r"hsv_to_rgb: image must have 3 channels"):
        hsv_to_rgb(jnp.zeros((2, 2, 1)))
    with pytest.raises(ValueError, match=r"fit_pca_color: images must have 3 channels"):
        fit_pca_color(jnp.zeros((2, 2, 2, 1)))
    with pytest.raises(ValueError, match=r"random_saturation: image must have 3 channels"):
        random_saturation(key, jnp.zeros((2, 2, 4)), 0.5, 1.5)
    with pytest.raises(ValueError, match=r"pca_color: eigvals must be shape \(3,\), got .*\(2,\)"):
        pca_color(key, x, jnp.ones(2), jnp.eye(3))
    with pytest.raises(ValueError, match=r"random_crop: crop size \(8, 3\) must be at most the"):
        random_crop(key, x, (8, 3))
    with pytest.raises(ValueError, match=r"random_crop: size must be an int or"):
        random_crop(key, x, (2, 2, 2))
    with pytest.raises(ValueError, match=r"random_resized_crop: size must be >= 1, got \(0, 2\)"):
        random_resized_crop(key, x, (0, 2))
    with pytest.raises(ValueError, match=r"random_resized_crop: need 0.0 < ratio lower <= ratio"):
        random_resized_crop(key, x, 4, ratio=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"random_resized_crop: scale upper must lie in"):
        random_resized_crop(key, x, 4, scale=(0.5, 1.5))
    with pytest.raises(ValueError, match=r"salt_and_pepper: amount must lie in \[0.0, 1.0\]"):
        salt_and_pepper(key, x, 1.5)
    with pytest.raises(ValueError, match=r"salt_vs_pepper must lie in"):
        salt_and_pepper(key, x, 0.5, salt_vs_pepper=-0.1)
    with pytest.raises(ValueError, match=r"random_salt_and_pepper: max_amount must lie in"):
        random_salt_and_pepper(key, x, 2.0)
    with pytest.raises(ValueError, match=r"random_flip_left_right: probability p must lie in"):
        random_flip_left_right(key, x, p=1.5)
    with pytest.raises(ValueError, match=r"random_flip_up_down: probability p must lie in"):
        random_flip_up_down(key, x, p=-0.5)
    with pytest.raises(ValueError, match=r"Transform: probability p must lie in"):
        Transform("rotate", 1.2, (0.1,))
    with pytest.raises(ValueError, match=r"Transform: name must be one of"):
        Transform("shear")
    with pytest.raises(TypeError, match=r"Transform: name must be a string or a callable"):
        Transform(3)
    with pytest.raises(ValueError, match=r"affine: matrix must be shape \(2, 3\), got .*\(3, 3\)"):
        affine(x, jnp.eye(3))
    with pytest.raises(ValueError, match=r"rotate: mode must be one of"):
        rotate(x, 0.1, mode="wrap")
    with pytest.raises(ValueError, match=r"random_rotate: max_angle must lie in"):
        random_rotate(key, x, -0.1)
    with pytest.raises(ValueError, match=r"random_scale: need 0.0 < lower <= upper"):
        random_scale(key, x, 1.2, 0.8)
    with pytest.raises(ValueError, match=r"random_translate: max_shift must lie in"):
        random_translate(key, x, (0.1, 1.5))
    with pytest.raises(ValueError, match=r"random_contrast: need 0.0 <= lower <= upper"):
        random_contrast(key, x, -0.5, 1.0)
    with pytest.raises(ValueError, match=r"random_brightness: max_delta must lie in"):
        random_brightness(key, x, -0.1)
    with pytest.raises(ValueError, match=r"gaussian_noise: sigma must be finite and >= 0.0"):
        gaussian_noise(key, x, -1.0)
    with pytest.raises(ValueError, match=r"random_gaussian_noise: max_sigma must lie in"):
        random_gaussian_noise(key, x, -1.0)
    with pytest.raises(ValueError, match=r"pca_color: sigma must be finite and >= 0.0"):
        pca_color(key, x, jnp.ones(3), jnp.eye(3), sigma=-1.0)
    with pytest.raises(TypeError, match=r"augment_batch: policy entries must be Transform"):
        augment_batch(key, x[None], ("rotate",))
    with pytest.raises(ValueError, match=r"augment_batch: batch_size must be >= 1, got 0"):
        augment_batch(key, x[None], POLICY, batch_size=0)
    with pytest.raises(TypeError, match=r"augment_batch: images must have a floating dtype"):
        augment_batch(key, jnp.zeros((1, 2, 2, 3), jnp.int32), POLICY)
    with pytest.raises(ValueError, match=r"expand_dataset: images must have rank 4"):
        expand_dataset(key, x, jnp.arange(7), 2, POLICY)
    with pytest.raises(ValueError, match=r"expand_dataset: factor must be >= 1, got 0"):
        expand_dataset(key, x[None], jnp.arange(1), 0, POLICY)
    with pytest.raises(TypeError, match=r"expand_dataset: factor must be an int"):
        expand_dataset(key, x[None], jnp.arange(1), 2.0, POLICY)
    with pytest.raises(ValueError, match=r"expand_dataset: labels must have leading axis N=1"):
        expand_dataset(key, x[None], jnp.arange(3), 2, POLICY)


# Issue 11: no silent wrong answer, errors a user can act on.


@pytest.mark.parametrize("mode", MODES)
def test_nan_parameters_give_nan_images(mode):
    # the "constant" mode used to test `inside` (False for NaN) and return an all-cval image
    x = jnp.asarray(IMG, jnp.float32)
    nan = float("nan")
    for y in (
        rotate(x, nan, mode=mode),
        translate(x, (nan, 0.0), mode=mode),
        scale(x, nan, mode=mode),
        affine(x, jnp.full((2, 3), nan), mode=mode),
    ):
        assert bool(jnp.all(jnp.isnan(y)))


def test_nan_pixels_propagate_through_the_hsv_ops():
    # one NaN channel makes its whole pixel NaN (the zero branches of the safe divisions used
    # to catch it); the other pixel matches colorsys
    x = jnp.array([[[float("nan"), 0.2, 0.1], [0.2, 0.5, 0.1]]])
    for y in (rgb_to_hsv(x), adjust_saturation(x, 0.5), adjust_value(x, 0.5)):
        assert bool(jnp.all(jnp.isnan(y[0, 0]))) and not bool(jnp.any(jnp.isnan(y[0, 1])))
    np.testing.assert_allclose(rgb_to_hsv(x)[0, 1], colorsys.rgb_to_hsv(0.2, 0.5, 0.1), rtol=1e-6)


def test_hsv_conversions_take_any_array_of_pixels(x64):
    # dm-pix and tf.image take any array whose last axis is 3: one pixel, a list of pixels
    pixels = IMG.reshape(-1, 3)
    want = _colorsys_image(colorsys.rgb_to_hsv, pixels)
    np.testing.assert_allclose(rgb_to_hsv(jnp.asarray(pixels)), want, atol=1e-14)
    np.testing.assert_allclose(rgb_to_hsv(jnp.asarray(pixels[0])), want[0], atol=1e-14)
    np.testing.assert_allclose(hsv_to_rgb(jnp.asarray(want)), pixels, atol=1e-14)
    with pytest.raises(ValueError, match=r"rgb_to_hsv: image must have rank >= 1"):
        rgb_to_hsv(jnp.float32(0.5))
    with pytest.raises(ValueError, match=r"hsv_to_rgb: image must have 3 channels"):
        hsv_to_rgb(jnp.zeros((5, 4)))


def test_degenerate_parameters_are_refused(key):
    x = jnp.asarray(IMG, jnp.float32)
    for bad in (0.0, (1.0, 0.0), float("inf")):
        with pytest.raises(ValueError, match=r"scale: factor must be non-zero and finite"):
            scale(x, bad)
    for bad in (float("inf"), -1.0):
        with pytest.raises(ValueError, match=r"gaussian_noise: sigma must be finite and >= 0"):
            gaussian_noise(key, x, bad)
    with pytest.raises(ValueError, match=r"random_rotate: max_angle must be finite"):
        random_rotate(key, x, float("inf"))
    with pytest.raises(ValueError, match=r"random_contrast: upper must be finite"):
        random_contrast(key, x, 0.5, float("inf"))
    with pytest.raises(ValueError, match=r"adjust_contrast: factor must be finite"):
        adjust_contrast(x, float("-inf"))
    with pytest.raises(ValueError, match=r"salt_and_pepper: amount must be finite"):
        salt_and_pepper(key, x, float("nan"))
    with pytest.raises(ValueError, match=r"fit_pca_color: images must hold a pixel"):
        fit_pca_color(jnp.zeros((0, 2, 2, 3)))
    with pytest.raises(ValueError, match=r"rotate: image must have at least one row"):
        rotate(jnp.zeros((0, 4, 3)), 0.1)
    # documented: under jit a traced zero factor cannot be refused and gives a NaN image
    assert bool(jnp.all(jnp.isnan(jax.jit(lambda f: scale(x, f))(0.0))))


def test_errors_name_the_function_and_the_argument(key):
    x = jnp.asarray(IMG, jnp.float32)
    cases = [
        (
            ValueError,
            r"scale: factor must be a scalar or shape \(2,\), got \(1, 2, 3\)",
            lambda: scale(x, (1, 2, 3)),
        ),
        (
            ValueError,
            r"adjust_brightness: delta must be a scalar, got \(0.1, 0.2\)",
            lambda: adjust_brightness(x, (0.1, 0.2)),
        ),
        (TypeError, r"rotate: angle must be a number, got .0.1.", lambda: rotate(x, "0.1")),
        (TypeError, r"rotate: mode must be one of", lambda: rotate(x, 0.1, mode=None)),
        (
            TypeError,
            r"translate: cval must be a number, got None",
            lambda: translate(x, 1.0, cval=None),
        ),
        (
            TypeError,
            r"flip_left_right: image must be a JAX or NumPy array, got list",
            lambda: flip_left_right(IMG.tolist()),
        ),
        (TypeError, r"random_crop: key must be one jax.random key", lambda: random_crop(0, x, 2)),
        (
            TypeError,
            r"random_crop: size must be an int or a tuple of 2 ints, got 2.0",
            lambda: random_crop(key, x, 2.0),
        ),
        (
            ValueError,
            r"random_resized_crop: scale must be shape \(2,\), got 0.5",
            lambda: random_resized_crop(key, x, 2, scale=0.5),
        ),
        (
            TypeError,
            r"pca_color: eigvals must be a real number",
            lambda: pca_color(key, x, np.array(["a", "b", "c"]), jnp.eye(3)),
        ),
        (
            TypeError,
            r"Transform: args must be a tuple of positional parameters, got 5",
            lambda: Transform("rotate", 1.0, 5),
        ),
        (TypeError, r"Transform: 'rotate' does not take args=\(\)", lambda: Transform("rotate")),
        (
            TypeError,
            r"Transform: probability p must be a number, got True",
            lambda: Transform("rotate", True, (0.1,)),
        ),
        (
            TypeError,
            r"augment_batch: policy must be a Transform or a sequence of Transforms, "
            r"got None",
            lambda: augment_batch(key, x, None),
        ),
        (
            TypeError,
            r"augment_batch: clip must be a bool",
            lambda: augment_batch(key, x, (), clip="no"),
        ),
        (
            ValueError,
            r"augment_batch: transform 'rotate': random_rotate: max_angle must lie in",
            lambda: augment_batch(key, x, Transform("rotate", 1.0, (-0.1,))),
        ),
        (
            TypeError,
            r"expand_dataset: keep_original must be a bool",
            lambda: expand_dataset(key, x[None], jnp.arange(1), 2, (), keep_original=1),
        ),
    ]
    for kind, match, call in cases:
        with pytest.raises(kind, match=match):
            call()


def test_docstring_examples():
    # the ops are defined in the private modules behind dlref.augment (doctest reads a module's
    # own functions only)
    failed = attempted = 0
    for module in (A, _geometry, _photometric, _color_conversion):
        result = doctest.testmod(module, extraglobs={"jax": jax, "jnp": jnp}, verbose=False)
        failed, attempted = failed + result.failed, attempted + result.attempted
    assert failed == 0 and attempted > 30
