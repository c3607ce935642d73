"""The GPU (Triton) and TPU (Mosaic) kernels lower from this CPU-only host, under abstract devices.

``jax.sharding.use_abstract_mesh`` with an ``AbstractDevice(platform="gpu")`` makes the Pallas
Triton lowering target that GPU (its compute capability comes from the device kind), and
``lower(lowering_platforms=("cuda",))`` produces the StableHLO module with the Triton kernels
embedded as ``__gpu$xla.gpu.triton`` custom calls. Compiling that module needs a CUDA
compiler (and ``compile()`` a device assignment), which a CPU jaxlib does not have: the XLA
memory analysis is therefore measured on a GPU by ``dlref bench``; here the lowered module's
buffers are inspected instead.
"""

from __future__ import annotations

import math
import re
import warnings

import jax
import jax.numpy as jnp
import pytest
from jax.extend.core import subjaxprs
from jax.sharding import AbstractDevice, AbstractMesh, AxisType

from dlref.kernels import ConvBlocks, pallas_conv
from dlref.kernels.primitives import is_conv_primitive

H100 = AbstractDevice(device_kind="NVIDIA H100", num_cores=None, platform="gpu")
MESH = AbstractMesh((1,), ("x",), (AxisType.Explicit,), abstract_device=H100)


def _lower(fn, *args) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "Pallas Triton is deprecated"
        with jax.sharding.use_abstract_mesh(MESH):
            lowered = jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",))
    return lowered.as_text()


def _triton_calls(text: str) -> int:
    return len(re.findall(r"custom_call @__gpu\$xla\.gpu\.triton\(", text))


def _largest_buffer(text: str) -> int:
    sizes = []
    for dims in re.findall(r"tensor<((?:\d+x)+)[a-z]", text):
        sizes.append(math.prod(int(d) for d in dims.strip("x").split("x")))
    return max(sizes)


CASES = [
    ("3x3-s2", (2, 16, 16, 32), (3, 3, 32, 64), dict(stride=2, padding=1)),
    ("depthwise", (2, 16, 16, 32), (3, 3, 1, 32), dict(padding=1, groups=32)),
    ("grouped-dil", (1, 12, 12, 32), (3, 3, 16, 32), dict(padding=2, dilation=2, groups=2)),
    ("1d", (2, 40, 16), (5, 16, 32), dict(padding="SAME")),
    ("3d", (1, 6, 8, 8, 16), (3, 3, 3, 16, 16), dict(padding=1)),
]


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
@pytest.mark.parametrize("name,xs,ws,opts", CASES, ids=[c[0] for c in CASES])
def test_forward_and_backward_lower_to_triton(name, xs, ws, opts, dtype):
    x = jax.ShapeDtypeStruct(xs, dtype)
    w = jax.ShapeDtypeStruct(ws, dtype)
    v = jax.ShapeDtypeStruct((ws[-1],), jnp.float32)
    res = jax.ShapeDtypeStruct(
        jax.eval_shape(lambda x, w: pallas_conv(x, w, **opts, interpret=True), x, w).shape, dtype
    )

    def fwd(x, w, b, s, t, r):
        return pallas_conv(x, w, bias=b, scale=s, shift=t, residual=r, activation="relu", **opts)

    def loss(x, w, b, s, t, r):
        return fwd(x, w, b, s, t, r).astype(jnp.float32).sum()

    text = _lower(fwd, x, w, v, v, v, res)
    assert _triton_calls(text) == 1
    assert "num_warps" in text and "dlref_conv_fwd" in text
    grad_text = _lower(jax.grad(loss, argnums=tuple(range(6))), x, w, v, v, v, res)
    # forward (emitting the pre-activation), input-gradient and weight-gradient kernels
    assert _triton_calls(grad_text) == 3
    assert "dlref_conv_wgrad" in grad_text


def test_forward_never_materializes_patches():
    # The ResNet-50 3x3 layer at 56x56: the im2col matrix would be 9x the input. Every buffer
    # of the lowered forward (pad, phase split, kernel output) stays below 2x the input.
    xs, ws = (8, 56, 56, 64), (3, 3, 64, 64)
    x, w = jax.ShapeDtypeStruct(xs, jnp.bfloat16), jax.ShapeDtypeStruct(ws, jnp.bfloat16)
    text = _lower(lambda x, w: pallas_conv(x, w, padding=1), x, w)
    patch = math.prod(xs[:3]) * 9 * 64
    largest = _largest_buffer(text)
    assert largest < 2 * math.prod(xs) < patch


def test_float64_is_not_supported_on_gpu(x64):
    x = jax.ShapeDtypeStruct((1, 8, 8, 16), jnp.float64)
    w = jax.ShapeDtypeStruct((3, 3, 16, 16), jnp.float64)
    with pytest.raises(NotImplementedError, match="float32, bfloat16 and float16"):
        _lower(lambda x, w: pallas_conv(x, w), x, w)


def test_triton_blocks_must_be_powers_of_two():
    x = jax.ShapeDtypeStruct((1, 8, 8, 16), jnp.float32)
    w = jax.ShapeDtypeStruct((3, 3, 16, 16), jnp.float32)
    with pytest.raises(NotImplementedError, match="power-of-two blocks >= 16, got block_m=24"):
        _lower(lambda x, w: pallas_conv(x, w, block=ConvBlocks(block_m=24)), x, w)


TPU = AbstractDevice(device_kind="TPU v5 lite", num_cores=1, platform="tpu")
TPU_MESH = AbstractMesh((1,), ("x",), (AxisType.Explicit,), abstract_device=TPU)


@pytest.mark.parametrize(
    "dtype,ws,opts",
    [
        (jnp.bfloat16, (3, 3, 128, 128), dict(stride=2, padding=1, activation="relu")),
        (jnp.float32, (3, 3, 1, 128), dict(padding=1, groups=128)),  # depthwise
    ],
    ids=["bf16-3x3-s2", "f32-depthwise"],
)
def test_tpu_variant_lowers_to_mosaic(dtype, ws, opts):
    # The (8, 128)-tiled TPU variant lowers to Mosaic custom calls from this CPU host (the
    # Mosaic compiler itself runs on a TPU; its numerics are tested in interpret mode).
    x = jax.ShapeDtypeStruct((2, 16, 16, 128), dtype)
    w = jax.ShapeDtypeStruct(ws, dtype)

    def loss(x, w):
        return pallas_conv(x, w, **opts).astype(jnp.float32).sum()

    with jax.sharding.use_abstract_mesh(TPU_MESH):
        fwd = jax.jit(lambda x, w: pallas_conv(x, w, **opts)).trace(x, w)
        text = fwd.lower(lowering_platforms=("tpu",)).as_text()
        grad = jax.jit(jax.grad(loss, (0, 1))).trace(x, w)
        grad_text = grad.lower(lowering_platforms=("tpu",)).as_text()
    assert text.count("custom_call @tpu_custom_call") == 1
    # input- and weight-gradient kernels, and the forward kernel where the activation's
    # derivative needs its output (relu); a sum of the bare conv needs no forward at all
    want = 3 if "activation" in opts else 2
    assert grad_text.count("custom_call @tpu_custom_call") == want


def _census(jaxpr, counts=None) -> dict[str, int]:
    """How many of each convolution primitive a jaxpr binds (sub-jaxprs included)."""
    counts = {"conv": 0, "transpose": 0, "wgrad": 0} if counts is None else counts
    for eqn in jaxpr.eqns:
        for kind in counts:
            if is_conv_primitive(eqn.primitive, kind):
                assert eqn.params["impl"] == "pallas"
                counts[kind] += 1
    for sub in subjaxprs(jaxpr):
        _census(sub, counts)
    return counts


@pytest.mark.parametrize(
    "transform,want",
    [
        ("grad", {"conv": 1, "transpose": 1, "wgrad": 1}),
        ("jvp", {"conv": 3, "transpose": 0, "wgrad": 0}),
        ("hvp", None),
    ],
)
def test_both_directions_and_every_order_run_the_pallas_kernels(transform, want):
    """Reverse mode runs the forward, input-gradient and weight-gradient kernels; forward mode
    runs the forward kernel on the primal and on each tangent (bilinearity); a
    Hessian-vector product (forward over reverse) runs only these kernels too. Counted twice:
    the primitives in the jaxpr, and the Triton kernels in the module lowered for CUDA, which
    has no XLA convolution."""
    x = jax.ShapeDtypeStruct((2, 8, 8, 16), jnp.float32)
    w = jax.ShapeDtypeStruct((3, 3, 16, 16), jnp.float32)
    b = jax.ShapeDtypeStruct((16,), jnp.float32)

    def f(x, w, b):
        return pallas_conv(x, w, bias=b, stride=2, padding=1, activation="tanh")

    def loss(x, w, b):
        return jnp.sum(f(x, w, b) ** 2)

    fn = {
        "grad": jax.grad(loss, (0, 1, 2)),
        "jvp": lambda x, w, b: jax.jvp(f, (x, w, b), (x, w, b)),
        "hvp": lambda x, w, b: jax.jvp(jax.grad(loss, (0, 1, 2)), (x, w, b), (x, w, b)),
    }[transform]
    with jax.sharding.use_abstract_mesh(MESH):
        counts = _census(jax.make_jaxpr(fn)(x, w, b).jaxpr)
    if want is not None:
        assert counts == want
    else:  # forward over reverse: more of each, all of them Pallas
        assert counts["conv"] >= 3 and counts["transpose"] >= 2 and counts["wgrad"] >= 2
    text = _lower(fn, x, w, b)
    assert _triton_calls(text) == sum(counts.values())
    assert "stablehlo.convolution" not in text
