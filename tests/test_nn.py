"""dlref.nn: recurrent cells vs a NumPy oracle and flax NNX cells; the NNX modules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from dlref.nn import (
    CNN,
    LSTM,
    MLP,
    RNN,
    BatchNorm,
    Conv,
    Dropout,
    ResNetBlock,
    lstm_cell,
    rnn_cell,
    scan_rnn,
)
from dlref.verify.nn import flax_lstm_cell, flax_rnn_cell, random_params

# ------------------------------------------------------------------ NumPy oracle (float64)


def _np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_rnn(params, h, xs):
    """Elman RNN over xs (N, T, I): h_t = tanh(x_t W_ih + h W_hh + b)."""
    w_ih, w_hh, b = (np.asarray(params[k], np.float64) for k in ("w_ih", "w_hh", "b"))
    h = np.asarray(h, np.float64)
    ys = []
    for t in range(xs.shape[1]):
        h = np.tanh(xs[:, t] @ w_ih + h @ w_hh + b)
        ys.append(h)
    return h, np.stack(ys, 1)


def np_lstm(params, h, c, xs):
    """LSTM with gate blocks (i, f, g, o), PyTorch's equations."""
    w_ih, w_hh, b = (np.asarray(params[k], np.float64) for k in ("w_ih", "w_hh", "b"))
    hid = w_hh.shape[0]
    h, c = np.asarray(h, np.float64), np.asarray(c, np.float64)
    ys = []
    for t in range(xs.shape[1]):
        z = xs[:, t] @ w_ih + h @ w_hh + b
        i, f, g, o = (z[:, k * hid : (k + 1) * hid] for k in range(4))
        c = _np_sigmoid(f) * c + _np_sigmoid(i) * np.tanh(g)
        h = _np_sigmoid(o) * np.tanh(c)
        ys.append(h)
    return (h, c), np.stack(ys, 1)


N, T, I, H = 3, 6, 4, 5


@pytest.fixture
def lstm_inputs(key, x64):
    kp, kx, kh, kc = jax.random.split(key, 4)
    params = random_params(kp, I, H, 4)
    xs = jax.random.normal(kx, (N, T, I), jnp.float64)
    h0 = jax.random.normal(kh, (N, H), jnp.float64)
    c0 = jax.random.normal(kc, (N, H), jnp.float64)
    return params, h0, c0, xs


@pytest.fixture
def rnn_inputs(key, x64):
    kp, kx, kh = jax.random.split(key, 3)
    params = random_params(kp, I, H, 1)
    xs = jax.random.normal(kx, (N, T, I), jnp.float64)
    h0 = jax.random.normal(kh, (N, H), jnp.float64)
    return params, h0, xs


# ------------------------------------------------------------------ values


def test_lstm_matches_numpy_oracle(lstm_inputs):
    params, h0, c0, xs = lstm_inputs
    (h, c), ys = scan_rnn(lstm_cell, params, (h0, c0), xs)
    (h_np, c_np), ys_np = np_lstm(params, h0, c0, np.asarray(xs))
    np.testing.assert_allclose(ys, ys_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h, h_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c, c_np, rtol=1e-12, atol=1e-14)
    assert ys.dtype == jnp.float64 and ys.shape == (N, T, H)


def test_rnn_matches_numpy_oracle(rnn_inputs):
    params, h0, xs = rnn_inputs
    h, ys = scan_rnn(rnn_cell, params, h0, xs)
    h_np, ys_np = np_rnn(params, h0, np.asarray(xs))
    np.testing.assert_allclose(ys, ys_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h, h_np, rtol=1e-12, atol=1e-14)
    assert h.dtype == jnp.float64


def test_lstm_gate_order_is_pytorch():
    # Only the forget-gate block (the second) of b is non-zero: with x = h = 0 every other
    # gate is sigmoid(0) = 0.5 and g = tanh(0) = 0, so c' = sigmoid(b_f) * c. A different
    # gate order would leave c' = 0.5 * c.
    p = {"w_ih": jnp.zeros((1, 4)), "w_hh": jnp.zeros((1, 4)), "b": jnp.array([0.0, 3.0, 0, 0])}
    h, c = lstm_cell(p, (jnp.zeros(1), jnp.ones(1)), jnp.zeros(1))
    np.testing.assert_allclose(c, _np_sigmoid(3.0), rtol=1e-6)
    np.testing.assert_allclose(h, 0.5 * np.tanh(_np_sigmoid(3.0)), rtol=1e-6)


def test_time_major_and_unbatched(lstm_inputs):
    params, h0, c0, xs = lstm_inputs
    _, ys = scan_rnn(lstm_cell, params, (h0, c0), xs)
    _, ys_tm = scan_rnn(lstm_cell, params, (h0, c0), jnp.swapaxes(xs, 0, 1), time_major=True)
    np.testing.assert_allclose(jnp.swapaxes(ys_tm, 0, 1), ys, rtol=1e-14)
    _, y0 = scan_rnn(lstm_cell, params, (h0[0], c0[0]), xs[0])
    np.testing.assert_allclose(y0, ys[0], rtol=1e-14)


# ------------------------------------------------------------------ flax, gradients through time


def _flax_scan(cell, params, carry, xs):
    """A Python loop over time with the flax cell (independent of lax.scan)."""
    ys = []
    for t in range(xs.shape[1]):
        carry = cell(params, carry, xs[:, t])
        ys.append(carry[0] if isinstance(carry, tuple) else carry)
    return carry, jnp.stack(ys, 1)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_gradients_through_time_match_flax(kind, lstm_inputs, rnn_inputs, key):
    if kind == "lstm":
        params, h0, c0, xs = lstm_inputs
        carry, ours, theirs = (h0, c0), lstm_cell, flax_lstm_cell
    else:
        params, h0, xs = rnn_inputs
        carry, ours, theirs = h0, rnn_cell, flax_rnn_cell

    def f(p, carry, xs):
        return scan_rnn(ours, p, carry, xs)

    def g(p, carry, xs):
        return _flax_scan(theirs, p, carry, xs)

    # jitted: one program per side instead of one per op of the unrolled flax loop
    out, vjp_f = jax.vjp(jax.jit(f), params, carry, xs)
    out_ref, vjp_g = jax.vjp(jax.jit(g), params, carry, xs)
    leaves, treedef = jax.tree.flatten(out_ref)
    keys = jax.random.split(key, len(leaves))
    ct = jax.tree.unflatten(
        treedef, [jax.random.normal(k, v.shape, v.dtype) for k, v in zip(keys, leaves)]
    )
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14), out, out_ref
    )
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13), vjp_f(ct), vjp_g(ct)
    )


# check_grads runs its function many times (finite differences of each derivative order):
# jitted, the scan is traced and compiled once per derivative instead of on every call.


def test_check_grads_lstm_and_scan(lstm_inputs):
    params, h0, c0, xs = lstm_inputs
    h0, c0, xs = h0[:1], c0[:1], xs[:1, :2]  # order-2 checks are costly: one 2-step sequence
    check_grads(
        jax.jit(lambda p, h, c, x: lstm_cell(p, (h, c), x)),
        (params, h0, c0, xs[:, 0]),
        order=2,
        modes=["fwd", "rev"],
    )
    check_grads(
        jax.jit(lambda p, h, c, x: scan_rnn(lstm_cell, p, (h, c), x)),
        (params, h0, c0, xs),
        order=2,
        modes=["fwd", "rev"],
    )


def test_check_grads_rnn(rnn_inputs):
    params, h0, xs = rnn_inputs
    check_grads(
        jax.jit(lambda p, h, x: scan_rnn(rnn_cell, p, h, x)),
        (params, h0[:1], xs[:1, :2]),
        order=2,
        modes=["fwd", "rev"],
    )


def test_jit_and_vmap_agree(lstm_inputs):
    params, h0, c0, xs = lstm_inputs
    f = lambda p, h, c, x: scan_rnn(lstm_cell, p, (h, c), x)  # noqa: E731
    eager = f(params, h0, c0, xs)
    jitted = jax.jit(f)(params, h0, c0, xs)
    mapped = jax.vmap(f, in_axes=(None, 0, 0, 0))(params, h0, c0, xs)
    for got in (jitted, mapped):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-13), got, eager)


def test_extreme_inputs_finite():
    p = random_params(jax.random.key(0), 2, 3, 4, jnp.float32)
    x = jnp.array([[1e4, -1e4]], jnp.float32)
    h = jnp.full((1, 3), 1e4, jnp.float32)

    def loss(x, h):
        hn, cn = lstm_cell(p, (h, h), x)
        return (
            jnp.sum(hn)
            + jnp.sum(cn)
            + jnp.sum(rnn_cell(random_params(jax.random.key(1), 2, 3, 1, jnp.float32), h, x))
        )

    value, grads = jax.value_and_grad(loss, argnums=(0, 1))(x, h)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)


# ------------------------------------------------------------------ bad input


def test_cell_errors():
    p4 = random_params(jax.random.key(0), 3, 2, 4, jnp.float32)
    p1 = random_params(jax.random.key(0), 3, 2, 1, jnp.float32)
    h = jnp.zeros((1, 2))
    with pytest.raises(ValueError, match=r"lstm_cell: input features x.shape\[-1\]"):
        lstm_cell(p4, (h, h), jnp.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"rnn_cell: input features x.shape\[-1\]"):
        rnn_cell(p1, h, jnp.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"rnn_cell: hidden state h.shape\[-1\] must equal H=2"):
        rnn_cell(p1, jnp.zeros((1, 3)), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match="lstm_cell: params must be a dict with keys"):
        lstm_cell({"w_ih": p4["w_ih"]}, (h, h), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"lstm_cell: params must have w_ih \(I, 4H\)"):
        lstm_cell(p1, (h, h), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"lstm_cell: carry must be a pair"):
        lstm_cell(p4, h, jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match="lstm_cell: h and c must have the same shape"):
        lstm_cell(p4, (h, jnp.zeros((2, 2))), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"params\['b'\] must have rank 1"):
        rnn_cell({**p1, "b": jnp.zeros((1, 2))}, h, jnp.zeros((1, 3)))
    with pytest.raises(TypeError, match="rnn_cell: x must have a floating dtype"):
        rnn_cell(p1, h, jnp.zeros((1, 3), jnp.int32))


def test_scan_rnn_errors():
    p = random_params(jax.random.key(0), 3, 2, 1, jnp.float32)
    with pytest.raises(ValueError, match="scan_rnn: xs .* must have rank 2 or 3, got rank 1"):
        scan_rnn(rnn_cell, p, jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(ValueError, match="must have rank 2 or 3, got rank 4"):
        scan_rnn(rnn_cell, p, jnp.zeros((1, 2)), jnp.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"rnn_cell: input features"):
        scan_rnn(rnn_cell, p, jnp.zeros((1, 2)), jnp.zeros((1, 5, 4)))


def _abstract(make):
    """A module built abstractly (``nnx.eval_shape``: no initialiser compiled or run), enough
    for the input checks that run before any parameter is used. ``make`` creates its own
    ``nnx.Rngs``: one from outside cannot be advanced inside the trace."""
    return nnx.eval_shape(make)


def test_module_errors():
    rngs = nnx.Rngs(0)
    with pytest.raises(ValueError, match=r"MLP: input features must equal in_features=64"):
        _abstract(lambda: MLP(64, [8], 10, rngs=nnx.Rngs(0)))(jnp.zeros((2, 7, 7)))
    with pytest.raises(ValueError, match="MLP: activation must be one of"):
        MLP(4, [8], 2, activation="gelu", rngs=rngs)
    with pytest.raises(ValueError, match=r"LSTM: input features xs.shape\[-1\] must equal"):
        _abstract(lambda: LSTM(8, 4, rngs=nnx.Rngs(0)))(jnp.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"RNN: xs \(batch, time, features\) must have rank 3"):
        _abstract(lambda: RNN(8, 4, rngs=nnx.Rngs(0)))(jnp.zeros((5, 8)))
    with pytest.raises(ValueError, match=r"CNN: input must have shape \(N, \*\(8, 8, 1\)\)"):
        _abstract(lambda: CNN(1, 10, rngs=nnx.Rngs(0)))(jnp.zeros((2, 6, 6, 1)))


def test_mismatched_batches_are_refused_up_front():
    # issue 11: these used to fail inside jnp broadcasting or lax.scan's carry check
    p1 = random_params(jax.random.key(0), 3, 2, 1, jnp.float32)
    with pytest.raises(ValueError, match=r"rnn_cell: the batch dims of x \(3,\) and h \(2,\)"):
        rnn_cell(p1, jnp.zeros((2, 2)), jnp.zeros((3, 3)))
    p4 = random_params(jax.random.key(0), 3, 2, 4, jnp.float32)
    h = jnp.zeros((2, 2))
    with pytest.raises(ValueError, match=r"lstm_cell: the batch dims of x \(3,\) and h \(2,\)"):
        lstm_cell(p4, (h, h), jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"rnn_cell: the batch dims"):
        scan_rnn(rnn_cell, p1, jnp.zeros((2, 2)), jnp.zeros((3, 4, 3)))
    # x's batch broadcasts against a batch-1 carry, but the carry would change shape
    with pytest.raises(ValueError, match=r"scan_rnn: one step must map the carry to a carry"):
        scan_rnn(rnn_cell, p1, jnp.zeros((1, 2)), jnp.zeros((3, 4, 3)))
    with pytest.raises(TypeError, match=r"scan_rnn: cell must be a callable"):
        scan_rnn(None, p1, jnp.zeros((1, 2)), jnp.zeros((1, 4, 3)))
    with pytest.raises(TypeError, match=r"rnn_cell: h must have a floating dtype"):
        rnn_cell(p1, jnp.zeros((1, 2), jnp.int32), jnp.zeros((1, 3)))


def test_module_arguments_are_checked_at_construction():
    rngs = nnx.Rngs(0)
    cases = [
        (ValueError, r"Conv: out_features must be >= 1, got -1", lambda: Conv(3, -1, 3, rngs=rngs)),
        (ValueError, r"Conv: impl must be one of", lambda: Conv(3, 4, 3, impl="cudnn", rngs=rngs)),
        (
            ValueError,
            r"MLP: hidden_features must be >= 1, got -1",
            lambda: MLP(4, [-1], 2, rngs=rngs),
        ),
        (
            TypeError,
            r"MLP: hidden_features must be a sequence of ints",
            lambda: MLP(4, 8, 2, rngs=rngs),
        ),
        (
            ValueError,
            r"MLP: dropout must lie in \[0.0, 1.0\)",
            lambda: MLP(4, [8], 2, dropout=-0.5, rngs=rngs),
        ),
        (
            TypeError,
            r"MLP: batch_norm must be a bool",
            lambda: MLP(4, [8], 2, batch_norm="yes", rngs=rngs),
        ),
        (ValueError, r"BatchNorm: num_features must be >= 1, got -1", lambda: BatchNorm(-1)),
        (ValueError, r"BatchNorm: eps must lie in \(0.0, inf\]", lambda: BatchNorm(4, eps=0.0)),
        (
            ValueError,
            r"Dropout: rate must lie in \[0.0, 1.0\), got 1.5",
            lambda: Dropout(1.5, rngs=rngs),
        ),
        (TypeError, r"Dropout: rngs must be an nnx.Rngs", lambda: Dropout(0.5, rngs=0)),
        (ValueError, r"CNN: image_size must be >= 4", lambda: CNN(1, 10, image_size=3, rngs=rngs)),
        (
            ValueError,
            r"ResNetBlock: stride must be >= 1",
            lambda: ResNetBlock(4, 4, stride=0, rngs=rngs),
        ),
        (TypeError, r"LSTM: hidden_features must be an int", lambda: LSTM(4, 2.0, rngs=rngs)),
        (
            ValueError,
            r"RNN: xs must hold at least one time step",
            lambda: _abstract(lambda: RNN(3, 2, rngs=nnx.Rngs(0)))(jnp.zeros((2, 0, 3))),
        ),
        (
            ValueError,
            r"BatchNorm: the last axis of x must hold num_features=4",
            lambda: BatchNorm(4)(jnp.zeros((2, 3))),
        ),
    ]
    for kind, match, call in cases:
        with pytest.raises(kind, match=match):
            call()


# ------------------------------------------------------------------ modules


def test_recurrent_modules_use_the_cells(key):
    model = LSTM(3, 4, out_features=2, rngs=nnx.Rngs(0))
    xs = jax.random.normal(key, (2, 5, 3))
    z = jnp.zeros((2, 4))
    _, ys = scan_rnn(lstm_cell, model.params, (z, z), xs)
    np.testing.assert_allclose(model.sequence(xs), ys, rtol=1e-6)
    np.testing.assert_allclose(model(xs), model.head(ys[:, -1]), rtol=1e-6)
    # forget-gate bias initialised to 1 (Jozefowicz et al. 2015), the others to 0
    np.testing.assert_array_equal(model.b[...], np.repeat([0.0, 1.0, 0.0, 0.0], 4))
    rnn = RNN(3, 4, rngs=nnx.Rngs(0))
    _, ys = scan_rnn(rnn_cell, rnn.params, z, xs)
    np.testing.assert_allclose(rnn(xs), ys[:, -1], rtol=1e-6)


def test_batchnorm_train_eval_matches_flax(key):
    x = 3.0 + 2.0 * jax.random.normal(key, (16, 5))
    ours = BatchNorm(5)
    theirs = nnx.BatchNorm(5, momentum=0.9, epsilon=1e-5, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.mean[...], theirs.mean[...], rtol=1e-6)
    # dlref keeps PyTorch's unbiased running variance: m/(m-1) times flax's biased update
    m = 16
    unbiased = 0.9 + 0.1 * np.var(np.asarray(x), 0) * m / (m - 1)
    np.testing.assert_allclose(ours.var[...], unbiased, rtol=1e-5)
    ours.eval()
    theirs.eval()
    stats = (ours.mean[...], ours.var[...])
    y = ours(x)
    want = (x - stats[0]) / jnp.sqrt(stats[1] + 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours.mean[...], stats[0])  # eval does not update


def test_dropout_train_vs_eval():
    d = Dropout(0.5, rngs=nnx.Rngs(0))
    x = jnp.ones((1000,))
    y = d(x)
    assert set(np.unique(np.asarray(y)).tolist()) == {0.0, 2.0}  # inverted: kept units * 2
    assert not np.array_equal(d(x), y)  # a fresh mask per call
    d.eval()
    np.testing.assert_array_equal(d(x), x)


def test_model_train_eval_switch(key):
    model = CNN(1, 10, rngs=nnx.Rngs(0))
    x = jax.random.uniform(key, (8, 8, 8, 1))
    model.train()
    assert not model.dropout.deterministic and not model.norms[0].use_running_average
    a, b = model(x), model(x)
    assert not np.allclose(a, b)  # dropout is active
    model.eval()
    assert model.dropout.deterministic and model.norms[0].use_running_average
    np.testing.assert_array_equal(model(x), model(x))
    # one example in eval mode gives the same output as inside a batch (running statistics)
    np.testing.assert_allclose(model(x[:1]), model(x)[:1], rtol=1e-5, atol=1e-6)


def test_mlp_residual_and_shapes(key):
    x = jax.random.normal(key, (4, 6))
    plain = MLP(6, [6, 6], 3, activation="tanh", rngs=nnx.Rngs(0))
    res = MLP(6, [6, 6], 3, activation="tanh", residual=True, rngs=nnx.Rngs(0))
    a = x
    for lin in res.linears:
        a = a + jnp.tanh(lin(a))
    np.testing.assert_allclose(res(x), res.head(a), rtol=1e-6)
    assert not np.allclose(plain(x), res(x))


@nnx.jit
def _block_and_parts(block, x):
    """The block's output and its residual branch, in one compiled call (eagerly, every conv
    and batch-norm op compiles on its own)."""
    inner = block.bn2(block.conv2(jax.nn.relu(block.bn1(block.conv1(x)))))
    return block(x), inner


def test_resnet_block(key):
    x = jax.random.normal(key, (2, 8, 8, 4))
    block = ResNetBlock(4, 4, rngs=nnx.Rngs(0))
    assert block.proj is None
    y, inner = _block_and_parts(block, x)
    np.testing.assert_allclose(y, jax.nn.relu(inner + x), rtol=1e-5, atol=1e-5)
    # the projection block's shape alone: built and traced abstractly (initialising its three
    # new kernel shapes would compile a sampler per shape)
    down = nnx.eval_shape(lambda: ResNetBlock(4, 8, stride=2, rngs=nnx.Rngs(0)))
    assert down.proj is not None
    graphdef, state = nnx.split(down)
    assert jax.eval_shape(lambda s, v: nnx.merge(graphdef, s)(v), state, x).shape == (2, 4, 4, 8)
