"""Pallas under jax.sharding: with the batch sharded over devices, each device runs the kernels on
its shard and the compiled program gathers no activations.

Four CPU devices are forced (``--xla_force_host_platform_device_count=4``) in a subprocess, since
the device count is fixed when jax starts; the kernels run in interpret mode. The programs are
read after XLA's partitioner (the compiled text, or the dump of ``dlref.train.fit``'s step).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

COMMON = """
RESULTS = {}
import json, os, dataclasses
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
"""

STEP = """
from dlref.convolution import conv
from dlref.kernels import primitives
import dlref.kernels.pallas_igemm

mesh = Mesh(np.array(jax.devices()), ("data",))
rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((8, 6, 6, 3)), jnp.float32)
w = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32) / 5

def loss(w, x):  # conv, batch norm (batch statistics), ReLU
    y = conv(x, w, padding=1, impl="pallas")
    z = (y - y.mean((0, 1, 2))) / jnp.sqrt(y.var((0, 1, 2)) + 1e-5)
    return jnp.mean(jax.nn.relu(z) ** 2)

xs = jax.device_put(x, NamedSharding(mesh, P("data")))
ws = jax.device_put(w, NamedSharding(mesh, P()))
out = {}
for partition in (True, False):  # False: the control, the kernels opaque to the partitioner
    impl = primitives._IMPLS["pallas"]
    primitives.register_impl(dataclasses.replace(impl, partition=partition))
    step = jax.jit(jax.value_and_grad(loss))  # traced afresh: the family is chosen at trace
    text = step.lower(ws, xs).compile().as_text()
    value, grad = step(ws, xs)
    out[str(partition)] = {"all_gather": "all-gather" in text, "all_reduce": "all-reduce" in text,
                           "value": float(value), "grad": np.asarray(grad).tolist()}
    primitives.register_impl(impl)
v0, g0 = jax.value_and_grad(loss)(w, x)
out["single"] = {"value": float(v0), "grad": np.asarray(g0).tolist()}
RESULTS["step"] = out
"""

FIT = """
import glob, optax
from flax import nnx
from dlref.activations import relu
from dlref.nn import BatchNorm, Conv
from dlref.train import data_parallel_mesh, fit

class Net(nnx.Module):  # Conv (Pallas) -> BatchNorm -> ReLU -> global average -> Linear
    def __init__(self, rngs):
        self.conv = Conv(1, 4, 3, use_bias=False, impl="pallas", rngs=rngs)
        self.bn = BatchNorm(4, rngs=rngs)
        self.head = nnx.Linear(4, 2, rngs=rngs)
    def __call__(self, x):
        return self.head(relu(self.bn(self.conv(x))).mean((1, 2)))

rng = np.random.default_rng(0)
x = rng.standard_normal((16, 6, 6, 1)).astype(np.float32)
y = (x.mean((1, 2, 3)) > 0).astype(np.int32)
params = {}
for name, mesh in (("sharded", data_parallel_mesh()), ("single", None)):
    model = Net(nnx.Rngs(0))
    fit(model, optax.sgd(0.1), (x, y), epochs=1, batch_size=8, mesh=mesh, progress=False)
    params[name] = np.asarray(model.conv.kernel[...])
dumps = glob.glob(os.path.join(os.environ["DUMP"], "*train_step*after_optimizations.txt"))
texts = [open(p).read() for p in dumps]
RESULTS["fit"] = ({
    "modules": len(texts),
    "all_gather": any("all-gather" in t for t in texts),
    "all_reduce": any("all-reduce" in t for t in texts),
    "kernel_diff": float(np.abs(params["sharded"] - params["single"]).max()),
    "kernel_change": float(np.abs(params["single"] - Net(nnx.Rngs(0)).conv.kernel[...]).max()),
})
print(json.dumps(RESULTS))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    """Both programs in one subprocess (one jax start-up, 4 forced host devices)."""
    dump = tmp_path_factory.mktemp("hlo")
    flags = f"--xla_dump_to={dump} --xla_dump_hlo_as_text --xla_dump_hlo_module_re=.*train_step.*"
    env = {**os.environ, "DUMP": str(dump)}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count=4 {flags}"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(COMMON + STEP + FIT)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_conv_bn_relu_step_runs_per_shard_without_gathering_activations(results):
    out = results["step"]
    sharded, control, single = out["True"], out["False"], out["single"]
    # per shard: no all-gather of x; the batch statistics and the weight gradient are
    # all-reduced (psum of the per-shard partial sums)
    assert not sharded["all_gather"] and sharded["all_reduce"]
    # the control shows what the partitioner does with an opaque kernel: gather the batch
    assert control["all_gather"]
    for run in (sharded, control):
        assert abs(run["value"] - single["value"]) < 1e-5 * abs(single["value"])
        err = max(abs(a - b) for a, b in zip(_flat(run["grad"]), _flat(single["grad"])))
        assert err < 1e-5 * max(abs(b) for b in _flat(single["grad"]))


def test_fit_data_parallel_runs_pallas_per_shard(results):
    """dlref.train.fit with a mesh (batch sharded over 4 devices) trains a CNN whose conv runs
    the Pallas kernels: its compiled step has no all-gather, and the result equals
    single-device training."""
    out = results["fit"]
    assert out["modules"] >= 1
    assert not out["all_gather"] and out["all_reduce"]
    assert out["kernel_change"] > 1e-3  # it trained
    assert out["kernel_diff"] < 1e-5


def _flat(v):
    if isinstance(v, list):
        return [u for item in v for u in _flat(item)]
    return [v]
