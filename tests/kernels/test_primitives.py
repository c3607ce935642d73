"""The convolution primitives' own rules: batching by folding, the fused epilogue under vmap, and
the transposes mapping among the three members (dlref.kernels.primitives).

The transformation table over every public op and impl is in tests/test_convolution.py; here the
rules are exercised member by member, with every combination of batched operands.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _oracle import lax_conv

import dlref.convolution  # noqa: F401  (registers the "reference" implementation)
from dlref.kernels import conv_geometry, pallas_conv, primitives
from dlref.testing import rel_err

# grouped (2 groups of 2 -> 3 channels), strided and dilated in one dim, (lo, hi) padding
X, W = (1, 7, 6, 4), (3, 2, 2, 6)
OPTS = dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2), groups=2)
GEO = conv_geometry(
    jax.ShapeDtypeStruct(X, jnp.float32), jax.ShapeDtypeStruct(W, jnp.float32), **OPTS, op="t"
)
Y = GEO.y_shape(X[0])
MEMBERS = {
    "conv": (lambda a, b, impl: primitives.conv(a, b, GEO, impl=impl)[0], X, W),
    "transpose": (lambda a, b, impl: primitives.conv_transpose(a, b, GEO, impl=impl), Y, W),
    "weight_grad": (lambda a, b, impl: primitives.weight_grad(a, b, GEO, impl=impl), X, Y),
}


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@pytest.mark.parametrize("axes", [(0, None), (None, 0), (0, 0), (2, 1)], ids=str)
@pytest.mark.parametrize("member", list(MEMBERS))
def test_vmap_folds_into_batch_groups_or_channels(member, axes):
    """Each member under vmap, for each set of batched operands (the fold into the batch, the
    groups, the input or the output channels), equals a Python loop; a vmapped axis that is
    not the leading one is moved first."""
    fn, sa, sb = MEMBERS[member]
    b = 3
    shapes = [s if ax is None else (*s[:ax], b, *s[ax:]) for s, ax in zip((sa, sb), axes)]
    a_, b_ = _normal(1, shapes[0]), _normal(2, shapes[1])

    def f(a, b):
        return fn(a, b, "im2col")

    got = jax.jit(jax.vmap(f, axes))(a_, b_)
    loop = jnp.stack(
        [
            f(*(v if ax is None else jnp.take(v, i, axis=ax) for v, ax in zip((a_, b_), axes)))
            for i in range(b)
        ]
    )
    assert rel_err(got, loop) < 1e-6


def test_the_transposes_map_among_the_three_members():
    # <conv(x, w), y> = <x, conv_transpose(y, w)> = <w, weight_grad(x, y)>: the adjoint
    # identities the transpose rules rely on, for the reference (the definition's own linear
    # transposes) and im2col (col2im and P^T dy).
    x, w, y = _normal(3, X), _normal(4, W), _normal(5, Y)
    for impl in ("reference", "im2col"):
        conv = MEMBERS["conv"][0](x, w, impl)
        dx = MEMBERS["transpose"][0](y, w, impl)
        dw = MEMBERS["weight_grad"][0](x, y, impl)
        a, b, c = (float(jnp.vdot(u, v)) for u, v in ((conv, y), (x, dx), (w, dw)))
        assert abs(a - b) < 1e-4 * abs(a) and abs(a - c) < 1e-4 * abs(a), impl
        assert rel_err(conv, lax_conv(x, w, **OPTS)) < 1e-5


def test_fused_epilogue_under_vmap(key):
    """vmap over x with a shared residual keeps the fused kernel (one dlref_conv, batch
    folded); vmap over the bias or scale falls back to the bare conv and a jnp epilogue. Both
    equal a Python loop."""
    ks = jax.random.split(key, 6)
    xs = jax.random.normal(ks[0], (2, 1, 5, 4, 3))
    w = jax.random.normal(ks[1], (3, 3, 3, 4))
    biases = jax.random.normal(ks[2], (2, 4))
    scale, shift = jax.random.normal(ks[3], (4,)), jax.random.normal(ks[4], (4,))
    res = jax.random.normal(ks[5], (1, 5, 4, 4))

    def f(x, b):
        kw = dict(scale=scale, shift=shift, residual=res, padding=1, activation="leaky_relu")
        return pallas_conv(x, w, bias=b, **kw)

    shared = jax.vmap(f, (0, None))
    jaxpr = jax.make_jaxpr(shared)(xs, biases[0])
    convs = [e for e in jaxpr.eqns if e.primitive.name == "dlref_conv"]
    assert len(convs) == 1 and convs[0].params["epilogue"].has == (True, True, True, True)
    got_shared, got_per = jax.jit(lambda: (shared(xs, biases[0]), jax.vmap(f)(xs, biases)))()
    for got, bs in ((got_shared, [biases[0]] * 2), (got_per, biases)):
        loop = jnp.stack([f(xs[i], bs[i]) for i in range(2)])
        assert rel_err(got, loop) < 1e-5


def test_an_unregistered_implementation_is_a_clear_error():
    x, w = jnp.ones(X), jnp.ones(W)
    with pytest.raises(NotImplementedError, match="no implementation 'nosuch' is registered"):
        jax.jit(lambda x, w: primitives.conv(x, w, GEO, impl="nosuch")).lower(x, w)
