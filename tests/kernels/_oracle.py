"""The oracle the kernel tests compare with: ``lax.conv_general_dilated`` at HIGHEST precision,
and the epilogue written out in jnp (independently of the kernels' own helpers). Errors are
measured with ``dlref.testing.rel_err``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from dlref._checks import as_tuple, normalize_padding
from dlref.testing import rel_err


def lax_conv(x, w, *, stride=1, padding=0, dilation=1, groups=1):
    nd = w.ndim - 2
    sp = {1: "W", 2: "HW", 3: "DHW"}[nd]
    s = as_tuple(stride, nd, "stride", "oracle")
    d = as_tuple(dilation, nd, "dilation", "oracle")
    pads = normalize_padding(
        padding, nd, "oracle", sizes=x.shape[1:-1], window=w.shape[:-2], stride=s, dilation=d
    )
    return lax.conv_general_dilated(
        x,
        w,
        s,
        pads,
        rhs_dilation=d,
        dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"),
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )


def lax_conv_epilogue(x, w, bias, scale, shift, residual, *, activation, slope=0.01, **conv):
    z = lax_conv(x, w, **conv) + bias
    z = z * scale + shift + residual
    if activation == "relu":
        return jnp.maximum(z, 0)
    if activation == "leaky_relu":
        return jnp.where(z >= 0, z, slope * z)
    if activation == "sigmoid":
        return 1 / (1 + jnp.exp(-z))
    if activation == "tanh":
        return jnp.tanh(z)
    return z


def vjp_both(f, ref, args, key):
    """Values of ``f`` and ``ref`` and their VJPs with the same cotangent."""
    want, pull_ref = jax.vjp(ref, *args)
    got, pull = jax.vjp(f, *args)
    ct = jax.random.normal(key, want.shape, jnp.float32)
    return got, want, pull(ct.astype(got.dtype)), pull_ref(ct.astype(want.dtype))


def assert_conv_matches_lax(conv, key, xs, ws, opts, tol):
    """``conv(x, w, **opts)`` on float32 normals of shapes ``xs`` and ``ws``: its value and both
    cotangents (one jitted program, the same cotangent) within ``tol`` of :func:`lax_conv`'s,
    with the same shapes and dtypes."""
    kx, kw, kc = jax.random.split(key, 3)
    x, w = jax.random.normal(kx, xs), jax.random.normal(kw, ws)

    def f(x, w):
        return conv(x, w, **opts)

    def ref(x, w):
        return lax_conv(x, w, **opts)

    got, want, g_got, g_want = jax.jit(lambda x, w: vjp_both(f, ref, (x, w), kc))(x, w)
    assert got.shape == want.shape and got.dtype == jnp.float32
    assert rel_err(got, want) < tol
    for a, b in zip(g_got, g_want, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert rel_err(a, b) < tol


def lax_patches(x, kernel, *, stride=1, padding=0, dilation=1, groups=1):
    """``lax.conv_general_dilated_patches`` as ``(groups, N·prod(out), prod(k)·C/groups)``
    with columns ordered (tap, channel), the layout of ``dlref.kernels.im2col`` (lax orders
    the features channel-major: (channel, tap))."""
    nd = len(kernel)
    sp = {1: "W", 2: "HW", 3: "DHW"}[nd]
    s = as_tuple(stride, nd, "stride", "oracle")
    d = as_tuple(dilation, nd, "dilation", "oracle")
    pads = normalize_padding(
        padding, nd, "oracle", sizes=x.shape[1:-1], window=kernel, stride=s, dilation=d
    )
    p = lax.conv_general_dilated_patches(
        x,
        tuple(kernel),
        s,
        pads,
        rhs_dilation=d,
        dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"),
        precision=lax.Precision.HIGHEST,
    )
    c, taps = x.shape[-1], math.prod(kernel)
    p = p.reshape(-1, groups, c // groups, taps)  # (rows, g, c_g, taps)
    return p.transpose(1, 0, 3, 2).reshape(groups, -1, taps * (c // groups))
